#!/usr/bin/env bash
# Image captioning recipe: Show, Attend and Tell (a CNN encoder's 14 x 14 feature grid, soft attention, an
# LSTM decoder) trained with teacher forcing and with scheduled sampling, decoded greedily and with beam
# search, scored with the COCO caption metrics. Offline by default: a synthetic set in the Flickr8k layout;
# real Flickr8k with --flickr8k DIR (scripts/download_flickr8k.sh).
#
#   Stage 0: dataset (synthesize it unless --flickr8k is given), then prepare: validate captions, splits
#            and images; the vocabulary
#   Stage 1: image cache (resized once, uint8) and the training images' mean and deviation
#   Stage 2: train one model per scheduled-sampling schedule in --schedules -> $exp/${name}_<schedule>
#   Stage 3: caption the test images with each beam size in --beams (1: greedy), attention maps
#   Stage 4: score (BLEU-1..4, METEOR, ROUGE-L, CIDEr-D; SPICE and SPIDEr with --corenlp), the best and
#            worst captions under each metric; $exp/RESULTS.md compares them all
#
# Usage: bash recipes/caption/run.sh [--stage N] [--stop-stage M] [--conf FILE] [--flickr8k DIR]
set -euo pipefail
RECIPE=$(cd "$(dirname "$0")" && pwd)
. "$RECIPE/../utils/lib.sh"

stage=0
stop_stage=4
conf=$RECIPE/conf/cpu.yaml   # image size, model, training (conf/base.yaml: the paper's sizes, on a GPU)
overlay=""                   # an extra YAML applied after --conf, e.g. recipes/caption/conf/tiny.yaml
flickr8k=""                  # a real Flickr8k folder; empty: synthesize one
split_source=auto            # official (Flickr_8k.*Images.txt), karpathy (dataset_flickr8k.json) or auto
min_count=5                  # words seen fewer times in the training captions become <unk>
schedules="none linear inverse_sigmoid"   # stage 2: teacher forcing only, and two scheduled-sampling schedules
beams="1 3"                  # stages 3 and 4: beam sizes (1: greedy)
corenlp=""                   # stage 4: folder of the Stanford CoreNLP 3.6.0 jars (SPICE); empty: without SPICE
name=sat                     # experiment names under $exp: ${name}_<schedule>
data=data/caption
exp=exp/caption
train=3000                   # synthetic set: training images
dev=300                      # synthetic set: dev images (valid while training)
test=300                     # synthetic set: test images
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
suffix=$(basename "$conf" .yaml)
if [ -n "$overlay" ]; then
  confs+=(--conf "$overlay")
  suffix=${suffix}_$(basename "$overlay" .yaml)
fi
src=${flickr8k:-$data/synth_${train}_${dev}_${test}_seed$seed}
prepared=$data/prepared_$(basename "$src")
feats=$data/images_$(basename "$src")_$suffix

if run_stage 0; then
  log "Stage 0: dataset $src, prepare -> $prepared"
  if [ -z "$flickr8k" ]; then
    aics caption synth --out "$src" --train "$train" --dev "$dev" --test "$test" --seed "$seed" "${ow[@]}" \
      >/dev/null
  fi
  aics caption prepare --src "$src" --out "$prepared" --min-count "$min_count" \
    --split-source "$split_source" "${ow[@]}"
fi

if run_stage 1; then
  log "Stage 1: image cache -> $feats"
  aics caption features --data "$prepared" --out "$feats" "${confs[@]}" "${ow[@]}"
fi

if run_stage 2; then
  for s in $schedules; do
    log "Stage 2: train, scheduled sampling $s -> $exp/${name}_$s"
    launch "$ngpu" caption train --data "$feats" --exp "$exp/${name}_$s" "${confs[@]}" --device "$device" \
      --set "sampling.schedule=$s" --set "train.seed=$seed" "${ow[@]}"
  done
fi

if run_stage 3; then
  for s in $schedules; do
    for b in $beams; do
      log "Stage 3: caption the test images, beam $b -> $exp/${name}_$s"
      aics caption decode --exp "$exp/${name}_$s" --data "$feats" --split test --beam "$b" \
        --device "$device" "${ow[@]}"
    done
  done
fi

if run_stage 4; then
  cn=()
  [ -z "$corenlp" ] || cn=(--corenlp "$corenlp")
  dirs=()
  for s in $schedules; do
    for d in "$exp/${name}_$s"/decode_test_*/; do
      log "Stage 4: score ${d%/}"
      aics caption score --decode "${d%/}" "${cn[@]}" "${ow[@]}"
    done
    dirs+=("$exp/${name}_$s")
  done
  aics caption report "${dirs[@]}" -o "$exp/RESULTS.md"
fi
