#!/usr/bin/env bash
# Language-model recipe: offline synthetic corpus by default (with its exact perplexity floor), or a real
# corpus with --corpus DIR (PTB layout, or --format raw for WikiText-2; see scripts/download_lm_corpora.sh).
#
#   Stage 0: corpus (synthesize it unless --corpus is given)
#   Stage 1: prepare: validate, vocabulary from train, encode the splits
#   Stage 2: train every model in --models with conf/<model>.yaml (plus --overlay, e.g. conf/tiny.yaml)
#   Stage 3: sample text from each model
#   Stage 4: score valid/test perplexity; $exp/RESULTS.md compares every scored model in $exp
#
# Usage: bash recipes/lm/run.sh [--stage N] [--stop-stage M] [--models "lstm gru transformer"] [--corpus DIR]
set -euo pipefail
RECIPE=$(cd "$(dirname "$0")" && pwd)
. "$RECIPE/../utils/lib.sh"

stage=0
stop_stage=4
models="lstm gru transformer" # any of: ffn rnn gru lstm transformer
confdir=$RECIPE/conf          # <model>.yaml per model (conf/ptb/ holds the literature settings for real PTB)
overlay=""                    # an extra YAML applied after each model's, e.g. recipes/lm/conf/tiny.yaml
data=data/lm
exp=exp/lm
corpus=""                     # real corpus directory; empty: synthesize
format=ptb                    # ptb or raw (WikiText-style wiki.*.tokens)
min_count=1                   # raw corpora: words seen fewer times become <unk>
train_tokens=1000000          # synthetic corpus only
valid_tokens=80000
test_tokens=80000
vocab_size=3000               # synthetic corpus: word types of the source
states=40                     # synthetic corpus: hidden states of the source
ngpu=1                        # >1: train with torchrun --nproc-per-node $ngpu
device=auto
seed=0
overwrite=false
help_message=$(usage "$0")
. "$RECIPE/../utils/parse_options.sh"
check_options "$@"
require_aics

ow=()
[ "$overwrite" = true ] && ow=(--overwrite)
suffix=""
[ -n "$overlay" ] && suffix=_$(basename "$overlay" .yaml)
src=${corpus:-$data/synth_${train_tokens}_v${vocab_size}_k${states}_seed$seed}
prepared=$data/prepared

if run_stage 0; then
  log "Stage 0: corpus"
  if [ -z "$corpus" ] && { [ ! -f "$src/floor.json" ] || [ "$overwrite" = true ]; }; then
    aics lm synth --out "$src" --train-tokens "$train_tokens" --valid-tokens "$valid_tokens" \
      --test-tokens "$test_tokens" --vocab-size "$vocab_size" --states "$states" --seed "$seed"
  fi
fi

if run_stage 1; then
  log "Stage 1: prepare $src -> $prepared"
  aics lm prepare --src "$src" --out "$prepared" --format "$format" --min-count "$min_count" "${ow[@]}"
fi

confs() { # the --conf arguments for model $1
  echo --conf "$confdir/$1.yaml"
  [ -z "$overlay" ] || echo --conf "$overlay"
}

if run_stage 2; then
  for m in $models; do
    log "Stage 2: train $m -> $exp/$m$suffix"
    # shellcheck disable=SC2046
    launch "$ngpu" lm train --data "$prepared" --exp "$exp/$m$suffix" $(confs "$m") --device "$device" \
      --set "train.seed=$seed" "${ow[@]}"
  done
fi

if run_stage 3; then
  for m in $models; do
    log "Stage 3: sample from $m"
    aics lm sample --exp "$exp/$m$suffix" --data "$prepared" --tokens 60 --temperature 0.8 --top-k 40 \
      --device "$device" >"$exp/$m$suffix/samples.txt"
    head -n 3 "$exp/$m$suffix/samples.txt" >&2
  done
fi

if run_stage 4; then
  for m in $models; do
    log "Stage 4: score $m"
    aics lm score --exp "$exp/$m$suffix" --data "$prepared" --device "$device"
  done
  mapfile -t dirs < <(scored_dirs "$exp") # every scored model in $exp, also those of earlier runs
  aics lm report "${dirs[@]}" -o "$exp/RESULTS.md"
  log "Scores: $exp/RESULTS.md and $exp/<model>/scores.json; curves: tensorboard --logdir $exp"
fi
