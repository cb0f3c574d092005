#!/usr/bin/env bash
# Usage: bash scripts/download_flickr8k.sh [OUT_DIR]    (default: data/flickr8k)
#
# Downloads Flickr8k (Hodosh, Young & Hockenmaier, 2013: 8,091 Flickr photos, five captions each; for research
# use under the original terms, which the University of Illinois form asked users to accept) and Karpathy's
# split file, checks their MD5 sums and lays them out as `aics caption prepare --src OUT_DIR` reads them:
# OUT_DIR/Flicker8k_Dataset/*.jpg, OUT_DIR/Flickr8k.token.txt, OUT_DIR/Flickr_8k.{train,dev,test}Images.txt
# and OUT_DIR/dataset_flickr8k.json. The Illinois server no longer serves the archives; they come from the
# copies most course material points to (github.com/jbrownlee/Datasets releases), Karpathy's file from
# cs.stanford.edu. The sums are those the R torchvision package (mlverse/torchvision) checks these same
# files against. A download resumes where it stopped and is renamed into place only once its sum is right;
# archives are unpacked with Python's zipfile (no unzip needed) and deleted afterwards. Needs internet, curl or
# wget, and ~2.5 GB free.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib_download.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib_download.sh"
out=${1:-data/flickr8k}
py=${PYTHON:-python3}
base="https://github.com/jbrownlee/Datasets/releases/download/Flickr8k"
archives=(
  "Flickr8k_Dataset.zip f18a1e2920de5bd84dae7cf08ec78978 $base/Flickr8k_Dataset.zip"
  "Flickr8k_text.zip bf6c1abcb8e4a833b7f922104de18627 $base/Flickr8k_text.zip"
  "caption_datasets.zip 4fa8c08369d22fe16e41dc124bd1adc2 https://cs.stanford.edu/people/karpathy/deepimagesent/caption_datasets.zip"
)

dl_need_sum md5 "the downloads"
dl_need_fetch "from $base"
command -v "$py" >/dev/null 2>&1 || { echo "error: need $py to unpack the zip archives (set PYTHON=...)" >&2; exit 1; }
mkdir -p "$out"

unzip_into() { # ARCHIVE DIR: unpack into a temp dir under DIR, echo its path
  local tmp
  tmp=$(mktemp -d "$2/.unpack.XXXXXX")
  "$py" -m zipfile -e "$1" "$tmp"
  echo "$tmp"
}

have() {
  case $1 in
    Flickr8k_Dataset.zip) [ -d "$out/Flicker8k_Dataset" ] ;;
    Flickr8k_text.zip) [ -f "$out/Flickr8k.token.txt" ] && [ -f "$out/Flickr_8k.testImages.txt" ] ;;
    caption_datasets.zip) [ -f "$out/dataset_flickr8k.json" ] ;;
  esac
}

for entry in "${archives[@]}"; do
  read -r name sum url <<<"$entry"
  if have "$name"; then
    echo "ok   what $name holds is in $out (remove it to download again)"
    continue
  fi
  dl_get_verified "$out/$name" "$sum" "$url" dl_fetch "$url" "$out/$name.part"
  tmp=$(unzip_into "$out/$name" "$out")
  case $name in
    Flickr8k_Dataset.zip)
      [ -d "$tmp/Flicker8k_Dataset" ] || { echo "error: $name has no Flicker8k_Dataset/" >&2; rm -rf "$tmp"; exit 1; }
      mv "$tmp/Flicker8k_Dataset" "$out/Flicker8k_Dataset" ;;
    Flickr8k_text.zip)
      for f in Flickr8k.token.txt Flickr_8k.trainImages.txt Flickr_8k.devImages.txt Flickr_8k.testImages.txt; do
        src=$(find "$tmp" -name "$f" -not -path '*__MACOSX*' | head -n 1)
        [ -n "$src" ] || { echo "error: $name has no $f" >&2; rm -rf "$tmp"; exit 1; }
        mv "$src" "$out/$f"
      done ;;
    caption_datasets.zip)
      src=$(find "$tmp" -name dataset_flickr8k.json | head -n 1)
      [ -n "$src" ] || { echo "error: $name has no dataset_flickr8k.json" >&2; rm -rf "$tmp"; exit 1; }
      mv "$src" "$out/dataset_flickr8k.json" ;;
  esac
  rm -rf "$tmp" "${out:?}/$name"
  echo "got  what $name holds"
done
echo "Flickr8k is in $out ($(find "$out/Flicker8k_Dataset" -name '*.jpg' | wc -l | tr -d ' ') images); next:"
echo "  bash recipes/caption/run.sh --flickr8k $out --conf recipes/caption/conf/base.yaml"
