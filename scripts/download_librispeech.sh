#!/usr/bin/env bash
# Usage: bash scripts/download_librispeech.sh [OUT_DIR] [SUBSET ...]
#        (default: data/librispeech dev-clean test-clean)
#
# Downloads LibriSpeech subsets (Panayotov et al., 2015; CC BY 4.0; read English, 16 kHz FLAC) from OpenSLR
# resource 12, checks each archive's MD5 against the sums OpenSLR publishes (pinned below, from
# https://www.openslr.org/resources/12/md5sum.txt) and unpacks it to OUT_DIR/LibriSpeech/SUBSET.
# SUBSET: dev-clean (337 MB), dev-other (314 MB), test-clean (346 MB), test-other (328 MB), train-clean-100
# (6.3 GB), train-clean-360 (23 GB), train-other-500 (30 GB). An interrupted download resumes where it stopped
# (from the next mirror if one fails; OPENSLR_MIRROR=https://... is tried first); an archive is unpacked into
# a temp dir, moved into place when complete and then deleted. Needs internet, curl or wget, md5sum (or md5)
# and tar.
set -euo pipefail
out=${1:-data/librispeech}
shift || true
subsets=("$@")
[ ${#subsets[@]} -gt 0 ] || subsets=(dev-clean test-clean)
mirrors=(https://www.openslr.org https://us.openslr.org https://openslr.elda.org)
if [ -n "${OPENSLR_MIRROR:-}" ]; then mirrors=("${OPENSLR_MIRROR%/}" "${mirrors[@]}"); fi
sums=(
  "dev-clean 42e2234ba48799c1f50f24a7926300a1"
  "dev-other c8d0bcc9cca99d4f8b62fcc847357931"
  "test-clean 32fa31d27d2e1cad72775fee3f4849a9"
  "test-other fb5a50374b501bb3bac4815ee91d3135"
  "train-clean-100 2a93770f6d5c6c964bc36631d331a522"
  "train-clean-360 c0e676e450a7ff2f54aeade5171606fa"
  "train-other-500 d1a0fd59409feb2c614ce4d30c387708"
)

if command -v md5sum >/dev/null 2>&1; then
  md5() { md5sum "$1" | cut -d' ' -f1; }
elif command -v md5 >/dev/null 2>&1; then
  md5() { md5 -q "$1"; }
else
  echo "error: need md5sum or md5 to check the downloads" >&2
  exit 1
fi
if command -v curl >/dev/null 2>&1; then
  fetch() { curl -fL --retry 3 -C - -o "$2" "$1"; } # -C -: resume a partial file
elif command -v wget >/dev/null 2>&1; then
  fetch() { wget -c -O "$2" "$1"; }
else
  echo "error: need curl or wget to download from ${mirrors[0]}" >&2
  exit 1
fi

sum_of() { # sum_of SUBSET: its MD5, nothing for an unknown subset
  local entry s m
  for entry in "${sums[@]}"; do
    read -r s m <<<"$entry"
    if [ "$s" = "$1" ]; then echo "$m"; fi
  done
}
if [ -n "$(sum_of "$out")" ]; then
  echo "error: '$out' is a subset, not a directory; usage: $0 [OUT_DIR] [SUBSET ...]" >&2
  exit 1
fi
for subset in "${subsets[@]}"; do
  if [ -z "$(sum_of "$subset")" ]; then
    echo "error: unknown subset '$subset'; use one or more of: ${sums[*]%% *}" >&2
    exit 1
  fi
done

mkdir -p "$out/LibriSpeech"
tmp=""
trap 'if [ -n "$tmp" ]; then rm -rf "$tmp"; fi' EXIT
for subset in "${subsets[@]}"; do
  if [ -d "$out/LibriSpeech/$subset" ]; then
    echo "ok   $out/LibriSpeech/$subset (remove it to download again)"
    continue
  fi
  sum=$(sum_of "$subset")
  name="$subset.tar.gz"
  archive="$out/$name"
  if [ ! -f "$archive" ]; then
    fetched=false
    # a .part that an earlier run finished but did not rename cannot be resumed: its sum says it is complete
    if [ -f "$archive.part" ] && [ "$(md5 "$archive.part")" = "$sum" ]; then
      fetched=true
    else
      for mirror in "${mirrors[@]}"; do
        if fetch "$mirror/resources/12/$name" "$archive.part"; then
          fetched=true
          break
        fi
        echo "warning: no (complete) download of $name from $mirror" >&2
      done
    fi
    if [ ! -f "$archive.part" ] || [ "$(md5 "$archive.part")" != "$sum" ]; then
      if $fetched; then
        rm -f "$archive.part"
        echo "error: $name has the wrong MD5 (expected $sum); removed the damaged file, run again" >&2
      else
        echo "error: could not download $name from any mirror; check the connection, run again to resume" >&2
      fi
      exit 1
    fi
    mv -f "$archive.part" "$archive"
    echo "got  $archive"
  fi
  tmp=$(mktemp -d "$out/.unpack.XXXXXX")
  tar -xf "$archive" -C "$tmp"
  [ -d "$tmp/LibriSpeech/$subset" ] || { echo "error: $name has no LibriSpeech/$subset" >&2; exit 1; }
  mv "$tmp/LibriSpeech/$subset" "$out/LibriSpeech/$subset"
  for f in "$tmp/LibriSpeech"/*; do # SPEAKERS.TXT, CHAPTERS.TXT, ...: the same in every archive
    if [ -f "$f" ] && [ ! -e "$out/LibriSpeech/$(basename "$f")" ]; then mv "$f" "$out/LibriSpeech/"; fi
  done
  rm -rf "$tmp"
  tmp=""
  rm -f "$archive"
  n=$(find "$out/LibriSpeech/$subset" -name '*.flac' | wc -l | tr -d ' ')
  echo "got  $out/LibriSpeech/$subset ($n utterances)"
done
echo "LibriSpeech ${subsets[*]} is in $out/LibriSpeech; next:" \
  "bash recipes/asr_dfcnn/run.sh --corpus $out/LibriSpeech --train-set train-clean-100 --valid-set dev-clean" \
  "--subsets test-clean"
