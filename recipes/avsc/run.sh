#!/usr/bin/env bash
# Audio-visual scene classification recipe (DCASE2021 task 1B): ten urban scenes from per-clip audio and video
# embeddings, by audio only, video only, early fusion (the embeddings concatenated at every time step),
# intermediate fusion (an encoder per modality, a joint head) and late fusion (the two single-modality
# posteriors: their mean, and per-scene weights fitted on the valid split). Offline by default: a synthetic
# set in the TAU Urban Audio-Visual Scenes 2021 layout with a designed modality structure; the real set with
# --dataset DIR and the embeddings the course provides (--audio-emb, --video-emb).
#
#   Stage 0: dataset (synthesize it unless --dataset is given), then prepare: validate the fold lists and
#            embeddings, hold out valid locations, normalisation statistics
#   (no stage 1: the embeddings are the features)
#   Stage 2: train each system in --systems -> $exp/<system>
#   Stage 3: predict the valid, evaluate and (when it lists clips) test splits; late fusion -> $exp/late_*
#   Stage 4: score each system (log loss, accuracy, per scene, confusion matrix); $exp/RESULTS.md compares
#            them and analyses where audio and video conflict
#
# Usage: bash recipes/avsc/run.sh [--stage N] [--stop-stage M] [--conf FILE] [--dataset DIR]
set -euo pipefail
RECIPE=$(cd "$(dirname "$0")" && pwd)
. "$RECIPE/../utils/lib.sh"

stage=0
stop_stage=4
conf=$RECIPE/conf/cpu.yaml   # model sizes and training (conf/base.yaml: for openl3's 512-dim embeddings)
overlay=""                   # an extra YAML applied after --conf, e.g. recipes/avsc/conf/tiny.yaml
dataset=""                   # a real TAU Urban Audio-Visual Scenes 2021 folder; empty: synthesize one
audio_emb=""                 # the real set: audio embeddings (a folder of .npy or .hdf5 files)
video_emb=""                 # the real set: video embeddings
steps=0                      # cut every clip to this many time steps (0: they must all agree)
systems="audio video early intermediate"   # stage 2: systems to train (late fusion needs audio and video)
train=60                     # synthetic set: training clips per scene
evaluate=20                  # synthetic set: evaluation clips per scene
corrupt=0.12                 # synthetic set: share of clips with one modality corrupted
data=data/avsc
exp=exp/avsc
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
[ -z "$overlay" ] || confs+=(--conf "$overlay")
src=${dataset:-$data/synth_${train}_${evaluate}_c${corrupt}_seed$seed}
prepared=$data/prepared_$(basename "$src")

if run_stage 0; then
  log "Stage 0: dataset $src, prepare -> $prepared"
  if [ -z "$dataset" ]; then
    aics avsc synth --out "$src" --train "$train" --evaluate "$evaluate" --test "$evaluate" \
      --corrupt "$corrupt" --seed "$seed" "${ow[@]}" >/dev/null
  fi
  emb=()
  [ -z "$audio_emb" ] || emb+=(--audio-emb "$audio_emb")
  [ -z "$video_emb" ] || emb+=(--video-emb "$video_emb")
  aics avsc prepare --src "$src" --out "$prepared" --steps "$steps" --seed "$seed" "${emb[@]}" "${ow[@]}"
fi

if run_stage 2; then
  for s in $systems; do
    log "Stage 2: train $s -> $exp/$s"
    launch "$ngpu" avsc train --data "$prepared" --exp "$exp/$s" "${confs[@]}" --device "$device" \
      --set "model.system=$s" --set "train.seed=$seed" "${ow[@]}"
  done
fi

splits="valid evaluate"
# the test fold (no labels: what a challenge submission predicts) when the dataset lists any
if [ -s "$prepared/test.jsonl" ]; then splits="$splits test"; fi
if run_stage 3; then
  for s in $systems; do
    for sp in $splits; do
      log "Stage 3: predict $sp with $s"
      aics avsc predict --exp "$exp/$s" --data "$prepared" --split "$sp" --device "$device" "${ow[@]}" >/dev/null
    done
  done
  if [[ " $systems " == *" audio "* && " $systems " == *" video "* ]]; then
    log "Stage 3: late fusion of audio and video -> $exp/late_mean, $exp/late_weighted"
    aics avsc fuse --audio "$exp/audio" --video "$exp/video" --data "$prepared" --out "$exp" "${ow[@]}"
  fi
fi

if run_stage 4; then
  dirs=()
  for s in $systems late_mean late_weighted; do
    [ -d "$exp/$s/predict_evaluate" ] || continue
    log "Stage 4: score $s"
    aics avsc score --pred "$exp/$s/predict_evaluate" "${ow[@]}"
    dirs+=("$exp/$s")
  done
  aics avsc report "${dirs[@]}" -o "$exp/RESULTS.md" >/dev/null
  log "Results: $exp/RESULTS.md; confusion matrices: $exp/*/predict_evaluate/score/confusion.png"
fi
