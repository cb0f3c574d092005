#!/usr/bin/env bash
# YOLOv5 detection recipe: the offline synthetic shapes set by default, or a real YOLO-format dataset with
# --dataset DATA.yaml (scripts/download_coco128.sh fetches coco128 and writes its data.yaml).
#
#   Stage 0: data: synthesize the shapes set in YOLO format (skipped with --dataset)
#   Stage 1: check the labels (every problem reported, scan cached) and plot their statistics
#   Stage 2: direct: train yolov5<size> from scratch -> $exp/<tag>_direct
#   Stage 3: pretrained: train from --weights (default: stage 2's best.pt) -> $exp/<tag>_pretrained
#   Stage 4: resume: a run stopped after --resume-steps steps, then continued with --resume -> $exp/<tag>_resume
#   Stage 5: val each run: P, R, mAP@0.5, mAP@0.5:0.95 per class, PR curve, confusion matrix, COCO json
#   Stage 6: predict: boxes drawn on the val images by the direct run -> $exp/<tag>_direct/predict
#   Stage 7: report: $exp/<tag>_RESULTS.md comparing the runs
#
# Usage: bash recipes/yolov5/run.sh [--stage N] [--stop-stage M] [--size n] [--conf FILE] [--dataset DATA.yaml]
set -euo pipefail
RECIPE=$(cd "$(dirname "$0")" && pwd)
. "$RECIPE/../utils/lib.sh"

stage=0
stop_stage=7
size=n                       # n s m l x
conf=$RECIPE/conf/base.yaml  # training config (conf/tiny.yaml: CI seconds; conf/coco128.yaml: GPU, 640 px)
dataset=""                   # a real dataset yaml; empty: the synthetic shapes set under --data
data=data/yolov5             # where the synthetic set is written
exp=exp/yolov5
train_images=1000            # synthetic set only
val_images=200
imgsz=320                    # synthetic images' longest side, and the val/predict size
weights=""                   # stage 3 start point; empty: stage 2's best.pt
resume_steps=20              # stage 4: steps before the simulated interruption
ngpu=1                       # >1: train with torchrun --nproc-per-node $ngpu
device=auto
seed=0
overwrite=false
help_message=$(usage "$0")
. "$RECIPE/../utils/parse_options.sh"
check_options "$@"
require_aics

ow=()
[ "$overwrite" = true ] && ow=(--overwrite)
synth=$data/shapes_${train_images}_${val_images}_${imgsz}_seed$seed
yaml=${dataset:-$synth/data.yaml}
tag=yolov5${size}_$(basename "$conf" .yaml)
runs="direct pretrained resume"
common=(--data "$yaml" --conf "$conf" --device "$device" --set "model.size=$size" --set "train.seed=$seed")

if run_stage 0 && [ -z "$dataset" ]; then
  log "Stage 0: synthesize $synth"
  aics detect synth --out "$synth" --train-images "$train_images" --val-images "$val_images" \
    --imgsz "$imgsz" --seed "$seed" "${ow[@]}"
fi

if run_stage 1; then
  log "Stage 1: check the labels of $yaml"
  aics detect check --data "$yaml" --out "$exp/data_check"
fi

if run_stage 2; then
  log "Stage 2: direct training -> $exp/${tag}_direct"
  launch "$ngpu" detect train --exp "$exp/${tag}_direct" "${common[@]}" "${ow[@]}"
fi

if run_stage 3; then
  w=${weights:-$exp/${tag}_direct/ckpt/best.pt}
  log "Stage 3: pretrained training from $w -> $exp/${tag}_pretrained"
  launch "$ngpu" detect train --exp "$exp/${tag}_pretrained" --weights "$w" "${common[@]}" "${ow[@]}"
fi

if run_stage 4; then
  log "Stage 4: a run stopped at step $resume_steps, then resumed -> $exp/${tag}_resume"
  launch "$ngpu" detect train --exp "$exp/${tag}_resume" "${common[@]}" --set "train.max_steps=$resume_steps" \
    "${ow[@]}"
  launch "$ngpu" detect train --resume "$exp/${tag}_resume"
fi

if run_stage 5; then
  for r in $runs; do
    [ -f "$exp/${tag}_$r/ckpt/best.pt" ] || continue
    log "Stage 5: val $exp/${tag}_$r"
    aics detect val --ckpt "$exp/${tag}_$r/ckpt/best.pt" --data "$yaml" --out "$exp/${tag}_$r/val" \
      --imgsz "$imgsz" --device "$device" "${ow[@]}"
  done
fi

if run_stage 6; then
  log "Stage 6: predict on the val images -> $exp/${tag}_direct/predict"
  aics detect predict --ckpt "$exp/${tag}_direct/ckpt/best.pt" --data "$yaml" --split val \
    --out "$exp/${tag}_direct/predict" --imgsz "$imgsz" --device "$device"
fi

if run_stage 7; then
  dirs=()
  for r in $runs; do
    [ -f "$exp/${tag}_$r/val/scores.json" ] && dirs+=("$exp/${tag}_$r")
  done
  aics detect report "${dirs[@]}" -o "$exp/${tag}_RESULTS.md"
  log "Results: $exp/${tag}_RESULTS.md; curves: tensorboard --logdir $exp"
fi
