#!/usr/bin/env bash
# Usage: bash scripts/download_coco128.sh [OUT_DIR]    (default: data/coco128)
#
# Downloads COCO128 (the first 128 images of COCO train2017 with YOLO labels, ~7 MB) from the Ultralytics
# assets release, unzips it into OUT_DIR and writes OUT_DIR/data.yaml for `aics detect` (train and val are
# the same 128 images, as in YOLOv5's coco128.yaml). Needs curl or wget and unzip. Offline,
# `aics detect synth --out DIR` writes a dataset in the same format.
#
# The download resumes if interrupted. No checksum is published next to the file, so none is pinned here:
# the script prints the archive's sha256 for you to compare, and checks that it holds 128 images.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib_download.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib_download.sh"
out=${1:-data/coco128}
url="https://github.com/ultralytics/assets/releases/download/v0.0.0/coco128.zip"
zip="$out.zip"
min_bytes=5000000 # the archive is ~6.7 MB; anything much smaller is an error page

mkdir -p "$(dirname "$zip")"
if [ -f "$out/data.yaml" ] && [ -d "$out/images/train2017" ]; then
  echo "ok   $out already has COCO128 (remove it to download again)"
  exit 0
fi

if [ ! -f "$zip" ]; then
  dl_need_fetch "$url"
  dl_fetch "$url" "$zip.part"
  mv "$zip.part" "$zip"
fi

size=$(wc -c <"$zip" | tr -d ' ')
if [ "$size" -lt "$min_bytes" ]; then
  echo "error: $zip has only $size bytes (expected ~6.7 MB); remove it and try again" >&2
  exit 1
fi
if command -v sha256sum >/dev/null 2>&1; then
  echo "sha256 $(sha256sum "$zip" | cut -d' ' -f1)  $zip (not pinned: compare with a trusted copy if you need to)"
fi

command -v unzip >/dev/null 2>&1 || { echo "error: need unzip to extract $zip" >&2; exit 1; }
tmp=$(mktemp -d "$(dirname "$out")/.coco128.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
unzip -q "$zip" -d "$tmp"
src="$tmp/coco128" # the archive's top-level directory
[ -d "$src/images/train2017" ] || { echo "error: $zip has no coco128/images/train2017" >&2; exit 1; }
n=$(find "$src/images/train2017" -name '*.jpg' | wc -l | tr -d ' ')
if [ "$n" -ne 128 ]; then
  echo "error: $zip holds $n images, expected 128; remove it and try again" >&2
  exit 1
fi
mkdir -p "$out"
cp -R "$src/." "$out/"

cat >"$out/data.yaml" <<'EOF'
# COCO128: the first 128 images of COCO 2017 train (https://cocodataset.org), YOLO labels by Ultralytics.
# Written by scripts/download_coco128.sh; paths are relative to this file.
path: .
train: images/train2017
val: images/train2017
names: [person, bicycle, car, motorcycle, airplane, bus, train, truck, boat, traffic light, fire hydrant,
  stop sign, parking meter, bench, bird, cat, dog, horse, sheep, cow, elephant, bear, zebra, giraffe,
  backpack, umbrella, handbag, tie, suitcase, frisbee, skis, snowboard, sports ball, kite, baseball bat,
  baseball glove, skateboard, surfboard, tennis racket, bottle, wine glass, cup, fork, knife, spoon, bowl,
  banana, apple, sandwich, orange, broccoli, carrot, hot dog, pizza, donut, cake, chair, couch, potted plant,
  bed, dining table, toilet, tv, laptop, mouse, remote, keyboard, cell phone, microwave, oven, toaster, sink,
  refrigerator, book, clock, vase, scissors, teddy bear, hair drier, toothbrush]
EOF
echo "COCO128 ($n images) is in $out; data yaml: $out/data.yaml"
