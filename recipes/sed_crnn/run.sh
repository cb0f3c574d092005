#!/usr/bin/env bash
# Sound event detection recipe: a CRNN trained on weakly labelled clips (clip tags only) that says which
# events occur in a clip and when. Offline by default: a synthetic set in the DCASE2018 task 4 layout; the
# real set with --dataset DIR (scripts/download_dcase2018_task4.sh).
#
#   Stage 0: dataset (synthesize it unless --dataset is given), then prepare: validate metadata and audio,
#            write the clip lists and their hashes
#   Stage 1: features: 64-band log-mel, per-band statistics of the weak training clips
#   Stage 2: train on the weak clips' tags -> $exp/$tag (the test split picks best.pt)
#   Stage 3: predict the events of every split in --splits
#   Stage 4: score: event-based F1 (DCASE2018), segment-based F1 / ER, tagging F1, per class, clip pictures;
#            $exp/$tag/RESULTS.md and $exp/RESULTS.md
#
# Usage: bash recipes/sed_crnn/run.sh [--stage N] [--stop-stage M] [--conf FILE] [--dataset DIR]
set -euo pipefail
RECIPE=$(cd "$(dirname "$0")" && pwd)
. "$RECIPE/../utils/lib.sh"

stage=0
stop_stage=4
conf=$RECIPE/conf/cpu.yaml   # features, model, training (conf/base.yaml: the DCASE2018 baseline's 44.1 kHz)
overlay=""                   # an extra YAML applied after --conf, e.g. recipes/sed_crnn/conf/tiny.yaml
dataset=""                   # a real DCASE2018 task 4 dataset dir; empty: synthesize
allow_missing=false          # real set: leave out the listed clips whose audio could not be downloaded
name=crnn                    # experiment name under $exp (the conf's name is appended)
data=data/sed
exp=exp/sed
weak=400                     # synthetic set: weakly labelled training clips
unlabel=100                  # synthetic set: unlabelled in-domain clips
test=100                     # synthetic set: strongly labelled test (valid) and eval clips, each
sr=44100                     # synthetic set: sample rate of the clips
splits="eval"                # stages 3 and 4: splits to predict and score
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
confs=(--conf "$conf")
tag=${name}_$(basename "$conf" .yaml)
if [ -n "$overlay" ]; then
  confs+=(--conf "$overlay")
  tag=${tag}_$(basename "$overlay" .yaml)
fi
src=${dataset:-$data/synth_w${weak}_t${test}_sr${sr}_seed$seed}
prepared=$data/prepared_$(basename "$src")
feats=$data/feats_$(basename "$src")_${tag#"${name}_"}

if run_stage 0; then
  log "Stage 0: dataset $src, prepare -> $prepared"
  if [ -z "$dataset" ]; then
    aics sed synth --out "$src" --weak "$weak" --unlabel "$unlabel" --test "$test" --eval "$test" \
      --sr "$sr" --seed "$seed" "${ow[@]}" >/dev/null
  fi
  missing=()
  [ "$allow_missing" = true ] && missing=(--allow-missing)
  aics sed prepare --src "$src" --out "$prepared" "${missing[@]}" "${ow[@]}"
fi

if run_stage 1; then
  log "Stage 1: features -> $feats"
  aics sed features --data "$prepared" --out "$feats" "${confs[@]}" "${ow[@]}"
fi

if run_stage 2; then
  log "Stage 2: train -> $exp/$tag"
  launch "$ngpu" sed train --data "$feats" --exp "$exp/$tag" "${confs[@]}" --device "$device" \
    --set "train.seed=$seed" "${ow[@]}"
fi

if run_stage 3; then
  for s in $splits; do
    log "Stage 3: predict $s -> $exp/$tag/predict_${s}_best"
    aics sed predict --exp "$exp/$tag" --data "$feats" --split "$s" --device "$device" "${ow[@]}"
  done
fi

if run_stage 4; then
  for s in $splits; do
    log "Stage 4: score $exp/$tag/predict_${s}_best"
    aics sed score --pred "$exp/$tag/predict_${s}_best" --data "$feats" "${ow[@]}"
  done
  aics sed report "$exp/$tag" -o "$exp/$tag/RESULTS.md" >/dev/null
  mapfile -t dirs < <(for d in "$exp"/*/; do ls "$d"predict_*/score/scores.json >/dev/null 2>&1 && echo "${d%/}"; done)
  aics sed report "${dirs[@]}" -o "$exp/RESULTS.md"
fi
