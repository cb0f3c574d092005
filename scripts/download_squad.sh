#!/usr/bin/env bash
# Usage: bash scripts/download_squad.sh [OUT_DIR]    (default: data/squad)
#
# Downloads SQuAD v1.1 (Rajpurkar et al., 2016; CC BY-SA 4.0): train-v1.1.json (30,288,272 bytes) and
# dev-v1.1.json (4,854,279 bytes) from the dataset's own site, and checks their SHA-256 sums. A file already
# in OUT_DIR with the right sum is kept; each download goes to a temp file first and is renamed into place
# only once its sum is right, so an interrupted run never leaves a partial json behind. Needs internet
# and curl or wget; offline, `aics squad synth --out DIR` writes a dataset in the same format.
set -euo pipefail
out=${1:-data/squad}
base="https://rajpurkar.github.io/SQuAD-explorer/dataset"
files=(
  "train-v1.1.json 3527663986b8295af4f7fcdff1ba1ff3f72d07d61a20f487cb238a6ef92fd955"
  "dev-v1.1.json 95aa6a52d5d6a735563366753ca50492a658031da74f301ac5238b03966972c9"
)

if command -v sha256sum >/dev/null 2>&1; then
  sha256() { sha256sum "$1" | cut -d' ' -f1; }
elif command -v shasum >/dev/null 2>&1; then
  sha256() { shasum -a 256 "$1" | cut -d' ' -f1; }
else
  echo "error: need sha256sum or shasum to check the downloads" >&2
  exit 1
fi
if command -v curl >/dev/null 2>&1; then
  fetch() { curl -fsSL --retry 3 -o "$2" "$1"; }
elif command -v wget >/dev/null 2>&1; then
  fetch() { wget -q -O "$2" "$1"; }
else
  echo "error: need curl or wget to download from $base" >&2
  exit 1
fi

mkdir -p "$out"
tmp=""
trap 'if [ -n "$tmp" ]; then rm -f "$tmp"; fi' EXIT
for entry in "${files[@]}"; do
  read -r name sum <<<"$entry"
  if [ -f "$out/$name" ] && [ "$(sha256 "$out/$name")" = "$sum" ]; then
    echo "ok   $out/$name"
    continue
  fi
  tmp=$(mktemp "$out/.$name.XXXXXX")
  if ! fetch "$base/$name" "$tmp"; then
    echo "error: could not download $base/$name; check the connection and try again" >&2
    exit 1
  fi
  got=$(sha256 "$tmp")
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
