#!/usr/bin/env bash
# Usage: bash scripts/download_tau_av_2021.sh [OUT_DIR] [--audio]    (default: data/tau_av_2021)
#
# Downloads TAU Urban Audio-Visual Scenes 2021, development set (Wang, Mesaros, Heittola & Virtanen, 2021;
# DCASE2021 task 1B; Zenodo record 4477542, https://doi.org/10.5281/zenodo.4477542) and checks each archive's
# MD5 (the sums the record lists): the metadata archive always (meta.csv and evaluation_setup/, unpacked to
# OUT_DIR/TAU-urban-audio-visual-scenes-2021-development.meta/), and with --audio the eight audio archives too
# (34 hours of 48 kHz binaural audio, about 35 GB, unpacked beside it). The video archives (much larger) are
# not fetched here: take them from the record, whose page lists their MD5s. A download resumes where it
# stopped and is renamed into place only once its sum is right; archives are unpacked with Python's zipfile
# and deleted afterwards. Needs internet and curl or wget.
#
# `aics avsc` trains on per-clip embeddings, not on the audio and video themselves: compute them with the
# extractor of your course (openl3 in DCASE's baseline), one (time steps, dim) array per clip saved as
# <clip>.npy, or use the HDF5 files your course provides, then
#   bash recipes/avsc/run.sh --dataset OUT_DIR/TAU-urban-audio-visual-scenes-2021-development.meta \
#     --audio-emb AUDIO_EMB_DIR --video-emb VIDEO_EMB_DIR --steps 96 --conf recipes/avsc/conf/base.yaml
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib_download.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib_download.sh"
out=data/tau_av_2021
audio=false
for arg in "$@"; do
  case $arg in
    --audio) audio=true ;;
    -*) echo "error: unknown option $arg; usage: $0 [OUT_DIR] [--audio]" >&2; exit 1 ;;
    *) out=$arg ;;
  esac
done
py=${PYTHON:-python3}
name=TAU-urban-audio-visual-scenes-2021-development
base="https://zenodo.org/record/4477542/files"
archives=("$name.meta.zip 76e3d7ed5291b118372e06379cb2b490")
if [ "$audio" = true ]; then
  archives+=(
    "$name.audio.1.zip 186f6273f8f69ed9dbdc18ad65ac234f"
    "$name.audio.2.zip 7fd6bb63127f5785874a55aba4e77aa5"
    "$name.audio.3.zip 61396bede29d7c8c89729a01a6f6b2e2"
    "$name.audio.4.zip 6ddac89717fcf9c92c451868eed77fe1"
    "$name.audio.5.zip af4820756cdf1a7d4bd6037dc034d384"
    "$name.audio.6.zip ebd11ec24411f2a17a64723bd4aa7fff"
    "$name.audio.7.zip 2be39a76aeed704d5929d020a2909efd"
    "$name.audio.8.zip 972d8afe0874720fc2f28086e7cb22a9"
  )
fi

dl_need_sum md5 "the downloads"
dl_need_fetch "from $base"
command -v "$py" >/dev/null 2>&1 || { echo "error: need $py to unpack the zip archives (set PYTHON=...)" >&2; exit 1; }
mkdir -p "$out"
for entry in "${archives[@]}"; do
  read -r file sum <<<"$entry"
  done_mark="$out/.${file%.zip}.unpacked"
  if [ -f "$done_mark" ]; then
    echo "ok   $file (unpacked in $out; remove $done_mark to download again)"
    continue
  fi
  dl_get_verified "$out/$file" "$sum" "$base/$file" dl_fetch "$base/$file?download=1" "$out/$file.part"
  "$py" -m zipfile -e "$out/$file" "$out"
  rm -f "$out/$file"
  touch "$done_mark"
  echo "got  $file"
done
echo "TAU Urban Audio-Visual Scenes 2021 (development) is in $out: $out/$name.meta/evaluation_setup/"
