#!/usr/bin/env bash
# Usage: bash scripts/download_mnist.sh [OUT_DIR]    (default: data/mnist)
#
# Downloads the four MNIST IDX files (gzipped, ~11 MB) and checks their MD5 sums. Needs internet; offline,
# `aics vae synth --out DIR` writes a dataset in the same format. Then:
#   bash recipes/vae/run.sh --mnist data/mnist --valid-size 5000
set -euo pipefail
out=${1:-data/mnist}
mirrors=(
  "https://ossci-datasets.s3.amazonaws.com/mnist"
  "https://storage.googleapis.com/cvdf-datasets/mnist"
)
files=(
  "train-images-idx3-ubyte.gz f68b3c2dcbeaaa9fbdd348bbdeb94873"
  "train-labels-idx1-ubyte.gz d53e105ee54ea40749a09fcbcd1e9432"
  "t10k-images-idx3-ubyte.gz 9fb629c4189551a2d022fa330f9573f3"
  "t10k-labels-idx1-ubyte.gz ec29112dd5afa0611ce80d1b7f02629c"
)
mkdir -p "$out"
for entry in "${files[@]}"; do
  read -r name md5 <<<"$entry"
  if [ -f "$out/$name" ] && echo "$md5  $out/$name" | md5sum -c --status; then
    echo "ok   $out/$name"
    continue
  fi
  got=false
  for m in "${mirrors[@]}"; do
    if curl -fsSL --retry 2 -o "$out/$name.part" "$m/$name"; then
      got=true
      break
    fi
  done
  $got || { echo "error: could not download $name from any mirror" >&2; exit 1; }
  if ! echo "$md5  $out/$name.part" | md5sum -c --status; then
    rm -f "$out/$name.part"
    echo "error: $name has the wrong MD5 checksum (expected $md5); try again later" >&2
    exit 1
  fi
  mv "$out/$name.part" "$out/$name"
  echo "got  $out/$name"
done
echo "MNIST is in $out"
