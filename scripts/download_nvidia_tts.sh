#!/usr/bin/env bash
# Usage: bash scripts/download_nvidia_tts.sh [OUT_DIR]    (default: models/nvidia)
#
# Downloads NVIDIA's fp32 Tacotron2 and WaveGlow checkpoints (DeepLearningExamples, trained on LJSpeech,
# released 2019-04-27) from NGC: nvidia_tacotron2pyt_fp32_20190427 (~110 MB) and
# nvidia_waveglowpyt_fp32_20190427 (~1 GB). NVIDIA publishes no checksum for these files, so each download is
# checked by loading it with `aics tts info`, which reads it without running code from it and compares every
# key and shape with the model; only a file that passes is renamed into place. An interrupted download
# resumes. Needs internet and curl or wget. Then:
#   aics tts "Hello world." -o hello.wav --tacotron2 OUT_DIR/nvidia_tacotron2pyt_fp32_20190427 \
#     --waveglow OUT_DIR/nvidia_waveglowpyt_fp32_20190427
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib_download.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib_download.sh"
out=${1:-models/nvidia}
ngc="https://api.ngc.nvidia.com/v2/models/nvidia"
dl_need_fetch "$ngc"
command -v aics >/dev/null 2>&1 || { echo "error: aics is not on PATH; activate the venv (scripts/setup.sh)" >&2; exit 1; }
mkdir -p "$out"
for entry in "tacotron2_pyt_ckpt_fp32 nvidia_tacotron2pyt_fp32_20190427" \
             "waveglow_ckpt_fp32 nvidia_waveglowpyt_fp32_20190427"; do
  set -- $entry
  file="$out/$2"
  if [ -f "$file" ]; then
    echo "ok   $file (remove it to download again)"
    continue
  fi
  if ! dl_fetch "$ngc/$1/versions/19.09.0/files/$2" "$file.part"; then
    echo "error: could not download $2; check the connection, run again to resume" >&2
    exit 1
  fi
  if ! aics tts info "$file.part" >/dev/null; then
    rm -f "$file.part"
    echo "error: $2 is not the checkpoint expected (see above); removed it, run again" >&2
    exit 1
  fi
  mv "$file.part" "$file"
  echo "got  $file"
done
echo "next: aics tts \"Hello world.\" -o hello.wav --tacotron2 $out/nvidia_tacotron2pyt_fp32_20190427 --waveglow $out/nvidia_waveglowpyt_fp32_20190427"
