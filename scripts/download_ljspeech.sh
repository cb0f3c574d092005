#!/usr/bin/env bash
# Usage: bash scripts/download_ljspeech.sh [OUT_DIR]    (default: data/ljspeech)
#
# Downloads LJSpeech 1.1 (Ito & Johnson, 2017; public domain; 13,100 clips of one reader, 22.05 kHz, ~24 h):
# LJSpeech-1.1.tar.bz2 (2,748,572,632 bytes) from the dataset's own site, checks its SHA-256 and unpacks it to
# OUT_DIR/LJSpeech-1.1 (metadata.csv, wavs/). An interrupted download resumes where it stopped; the archive
# is renamed into place only once its sum is right, unpacked into a temp dir, moved into place when complete
# and then deleted. Needs internet, curl or wget, tar and bzip2, and ~6.5 GB free while unpacking.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib_download.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib_download.sh"
out=${1:-data/ljspeech}
name="LJSpeech-1.1.tar.bz2"
url="https://data.keithito.com/data/speech/$name"
sum="be1a30453f28eb8dd26af4101ae40cbf2c50413b1bb21936cbcdc6fae3de8aa5"

dl_need_sum sha256 "the download"
dl_need_fetch "$url"
command -v bzip2 >/dev/null 2>&1 || { echo "error: need bzip2 to unpack $name" >&2; exit 1; }

corpus="$out/LJSpeech-1.1"
if [ -f "$corpus/metadata.csv" ] && [ -d "$corpus/wavs" ]; then
  echo "ok   $corpus (remove it to download again)"
else
  mkdir -p "$out"
  dl_get_verified "$out/$name" "$sum" "$url" dl_fetch "$url" "$out/$name.part"
  dl_unpack "$out/$name" "$out"
  if [ ! -f "$DL_TMP/LJSpeech-1.1/metadata.csv" ]; then
    echo "error: $name has no LJSpeech-1.1/metadata.csv" >&2
    exit 1
  fi
  mv "$DL_TMP/LJSpeech-1.1" "$corpus"
  dl_unpacked "$out/$name"
  echo "got  $corpus ($(find "$corpus/wavs" -name '*.wav' | wc -l | tr -d ' ') wavs)"
fi
echo "LJSpeech 1.1 is in $corpus; next: bash recipes/asr_dfcnn/run.sh --corpus $corpus --subsets test"
