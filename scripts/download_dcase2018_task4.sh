#!/usr/bin/env bash
# Usage: bash scripts/download_dcase2018_task4.sh [OUT_DIR]    (default: data/dcase2018_task4)
#
# Downloads the METADATA of DCASE2018 task 4 (large-scale weakly labelled semi-supervised sound event detection
# in domestic environments; Serizel et al., 2018) from the task's official baseline repository,
# https://github.com/DCASE-REPO/dcase2018_baseline (task4/dataset/metadata), pinned to its last commit
# (5c5a0f6, 2019-08-19: duplicates removed from test.csv, eval.csv fixed), and checks their SHA-256 sums. The
# organisers publish no sums: those below were computed offline from the files of that commit, so they only
# say that a download is what that commit holds. Lays the files out as aics/tasks/sed/labels.py expects (the
# baseline's own dataset/ layout): OUT_DIR/metadata/train/weak.csv (1578 clips, clip tags),
# metadata/train/unlabel_in_domain.csv (14412 clips, no labels), metadata/test/test.csv (288 clips) and
# metadata/eval/eval.csv (880 clips) with strong labels, and makes the empty OUT_DIR/audio/{train/weak,
# train/unlabel_in_domain,test,eval} folders. A file already there with the right sum is kept; each download
# goes to a temp file first and is renamed into place only once its sum is right. Needs internet and curl or
# wget.
#
# The AUDIO IS NOT DOWNLOADED: the clips are 10-second excerpts of YouTube videos, which the baseline's
# download_data.py fetches one by one (printed at the end: how). Offline, or to start at once,
# `aics.tasks.sed.synth.generate(OUT_DIR)` writes a synthetic dataset in the same layout.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib_download.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib_download.sh"
out=${1:-data/dcase2018_task4}
commit=5c5a0f6aff27280c0b86d73d90a84bacf51adb24
base="https://raw.githubusercontent.com/DCASE-REPO/dcase2018_baseline/$commit/task4/dataset"
files=(
  "metadata/train/weak.csv 92e3c29539a274b4ad980b7536b0ac74f7676e434ccad9bb2df62199f65554f3"
  "metadata/train/unlabel_in_domain.csv 9c584dabde1f67e4252415b48ea9ab7461f2e5a7b938a3b11da0c83eaa39e056"
  "metadata/test/test.csv 194e2ef6c7dc358b72202a13911a78ffa937d8440ded7dc68048e37fcad9e7d2"
  "metadata/eval/eval.csv f000d9f352d2487f57a0e40c81ce5317e0bc3cb151b50a993f432e06de6b6705"
)
audio_dirs=(audio/train/weak audio/train/unlabel_in_domain audio/test audio/eval)

dl_need_sum sha256 "the downloads"
dl_need_fetch "from $base"

tmp=""
trap 'if [ -n "$tmp" ]; then rm -f "$tmp"; fi' EXIT
for entry in "${files[@]}"; do
  read -r name sum <<<"$entry"
  mkdir -p "$out/$(dirname "$name")"
  if [ -f "$out/$name" ] && [ "$(dl_sum "$out/$name")" = "$sum" ]; then
    echo "ok   $out/$name"
    continue
  fi
  tmp=$(mktemp "$out/$(dirname "$name")/.$(basename "$name").XXXXXX")
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
for d in "${audio_dirs[@]}"; do mkdir -p "$out/$d"; done

cat <<EOF
DCASE2018 task 4 metadata is in $out/metadata; the audio folders in $out/audio are EMPTY.
The audio does not come with this script. To get it (about 10 s per clip, 44.1 kHz; the baseline's readme
says a full download takes hours):
  1. git clone https://github.com/DCASE-REPO/dcase2018_baseline
     cd dcase2018_baseline/task4/dataset
  2. Set up its environment as its readme.md says (Python with dcase_util, youtube-dl, tqdm, pandas and
     ffmpeg; conda_create_environment.sh). youtube-dl is no longer maintained; its fork yt-dlp may be needed.
  3. python download_data.py
     It downloads each listed clip from YouTube into audio/test, audio/train/weak,
     audio/train/unlabel_in_domain, audio/train/unlabel_out_of_domain (not used here, and the largest part)
     and audio/eval, and lists the clips it could not get in missing_files_<set>.csv.
  4. Move or link those audio folders into $out/audio (same names).
Many videos have been deleted or made private since 2018, so expect missing clips; the dataset's readme
asks you to contact the task organisers if you cannot download the data, and they have provided missing
files on request.
EOF
