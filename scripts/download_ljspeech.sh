#!/usr/bin/env bash
# Usage: bash scripts/download_ljspeech.sh [OUT_DIR]    (default: data/ljspeech)
#
# Downloads LJSpeech 1.1 (Ito & Johnson, 2017; public domain; 13,100 clips of one reader, 22.05 kHz, ~24 h):
# LJSpeech-1.1.tar.bz2 (2,748,572,632 bytes) from the dataset's own site, checks its SHA-256 and unpacks it to
# OUT_DIR/LJSpeech-1.1 (metadata.csv, wavs/). An interrupted download resumes where it stopped; the archive
# is renamed into place only once its sum is right, unpacked into a temp dir, moved into place when complete
# and then deleted. Needs internet, curl or wget, tar and bzip2, and ~6.5 GB free while unpacking.
set -euo pipefail
out=${1:-data/ljspeech}
name="LJSpeech-1.1.tar.bz2"
url="https://data.keithito.com/data/speech/$name"
sum="be1a30453f28eb8dd26af4101ae40cbf2c50413b1bb21936cbcdc6fae3de8aa5"

if command -v sha256sum >/dev/null 2>&1; then
  sha256() { sha256sum "$1" | cut -d' ' -f1; }
elif command -v shasum >/dev/null 2>&1; then
  sha256() { shasum -a 256 "$1" | cut -d' ' -f1; }
else
  echo "error: need sha256sum or shasum to check the download" >&2
  exit 1
fi
if command -v curl >/dev/null 2>&1; then
  fetch() { curl -fL --retry 3 -C - -o "$2" "$1"; } # -C -: resume a partial file
elif command -v wget >/dev/null 2>&1; then
  fetch() { wget -c -O "$2" "$1"; }
else
  echo "error: need curl or wget to download $url" >&2
  exit 1
fi
command -v bzip2 >/dev/null 2>&1 || { echo "error: need bzip2 to unpack $name" >&2; exit 1; }

corpus="$out/LJSpeech-1.1"
if [ -f "$corpus/metadata.csv" ] && [ -d "$corpus/wavs" ]; then
  echo "ok   $corpus (remove it to download again)"
else
  mkdir -p "$out"
  if [ ! -f "$out/$name" ]; then
    fetched=true
    # a .part that an earlier run finished but did not rename cannot be resumed: its sum says it is complete
    if [ ! -f "$out/$name.part" ] || [ "$(sha256 "$out/$name.part")" != "$sum" ]; then
      fetch "$url" "$out/$name.part" || fetched=false
    fi
    if [ ! -f "$out/$name.part" ] || [ "$(sha256 "$out/$name.part")" != "$sum" ]; then
      if $fetched; then
        rm -f "$out/$name.part"
        echo "error: $name has the wrong SHA-256 (expected $sum); removed the damaged file, run again" >&2
      else
        echo "error: could not download $url; check the connection, run again to resume" >&2
      fi
      exit 1
    fi
    mv -f "$out/$name.part" "$out/$name"
    echo "got  $out/$name"
  fi
  tmp=$(mktemp -d "$out/.unpack.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  tar -xf "$out/$name" -C "$tmp"
  if [ ! -f "$tmp/LJSpeech-1.1/metadata.csv" ]; then
    echo "error: $name has no LJSpeech-1.1/metadata.csv" >&2
    exit 1
  fi
  mv "$tmp/LJSpeech-1.1" "$corpus"
  rm -f "$out/$name"
  echo "got  $corpus ($(find "$corpus/wavs" -name '*.wav' | wc -l | tr -d ' ') wavs)"
fi
echo "LJSpeech 1.1 is in $corpus; next: bash recipes/asr_dfcnn/run.sh --corpus $corpus --subsets test"
