#!/usr/bin/env bash
# Usage: bash scripts/download_squad.sh [OUT_DIR]    (default: data/squad)
#
# Downloads SQuAD v1.1 (Rajpurkar et al., 2016; CC BY-SA 4.0): train-v1.1.json (30,288,272 bytes) and
# dev-v1.1.json (4,854,279 bytes) from the dataset's own site, and checks their SHA-256 sums. A file already
# in OUT_DIR with the right sum is kept; each download goes to a temp file first and is renamed into place
# only once its sum is right, so an interrupted run never leaves a partial json behind. Needs internet
# and curl or wget; offline, `aics squad synth --out DIR` writes a dataset in the same format.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib_download.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib_download.sh"
out=${1:-data/squad}
base="https://rajpurkar.github.io/SQuAD-explorer/dataset"
files=(
  "train-v1.1.json 3527663986b8295af4f7fcdff1ba1ff3f72d07d61a20f487cb238a6ef92fd955"
  "dev-v1.1.json 95aa6a52d5d6a735563366753ca50492a658031da74f301ac5238b03966972c9"
)

dl_need_sum sha256 "the downloads"
dl_need_fetch "from $base"

mkdir -p "$out"
tmp=""
trap 'if [ -n "$tmp" ]; then rm -f "$tmp"; fi' EXIT
for entry in "${files[@]}"; do
  read -r name sum <<<"$entry"
  if [ -f "$out/$name" ] && [ "$(dl_sum "$out/$name")" = "$sum" ]; then
    echo "ok   $out/$name"
    continue
  fi
  tmp=$(mktemp "$out/.$name.XXXXXX")
  if ! dl_fetch_whole "$base/$name" "$tmp" 3; then
    echo "error: could not download $base/$name; check the connection and try again" >&2
    exit 1
  fi
  got=$(dl_sum "$tmp")
  if [ "$got" != "$sum" ]; then
    echo "error: $name has SHA-256 $got, expected $sum; the download is damaged or the file changed" >&2
    exit 1
  fi
  chmod 644 "$tmp"
  mv -f "$tmp" "$out/$name"
  tmp=""
  echo "got  $out/$name"
done
echo "SQuAD v1.1 is in $out"
