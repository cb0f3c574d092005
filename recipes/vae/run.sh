#!/usr/bin/env bash
# MNIST VAE recipe: offline (synthetic MNIST-format) data by default, real MNIST with --mnist DIR.
#
#   Stage 0: prepare data (write synthetic IDX files unless --mnist is given; validate; split train/valid)
#   Stage 1: features: none, the VAE reads pixels (kept for the common numbering)
#   Stage 2: train one VAE per latent size in --zdims
#   Stage 3: infer: latent maps over [-5, 5], latent scatter, reconstructions, prior samples
#   Stage 4: score valid/test; $exp/RESULTS.md compares every scored experiment in $exp
#
# Usage: bash recipes/vae/run.sh [--stage N] [--stop-stage M] [--conf FILE] [--zdims "1 2"] [--mnist DIR]
set -euo pipefail
RECIPE=$(cd "$(dirname "$0")" && pwd)
. "$RECIPE/../utils/lib.sh"

stage=0
stop_stage=4
conf=$RECIPE/conf/base.yaml # base: the real setting; conf/tiny.yaml runs in seconds
data=data/vae               # synthetic data and the prepared splits go under it
exp=exp/vae                 # one experiment per latent size: $exp/<conf>_<arch>_z<zdim>
mnist=""                    # real MNIST directory (scripts/download_mnist.sh); empty: synthesize
n_train=12000               # synthetic data only
n_test=2000                 # synthetic data only
valid_size=2000             # train images held out for validation
zdims="1 2"                 # latent sizes to train and compare
arch=mlp                    # mlp or conv
ngpu=1                      # >1: train with torchrun --nproc-per-node $ngpu
device=auto                 # auto, cpu, cuda, mps
seed=0
overwrite=false
help_message=$(usage "$0")
. "$RECIPE/../utils/parse_options.sh"
check_options "$@"
require_aics

ow=()
[ "$overwrite" = true ] && ow=(--overwrite)
tag=$(basename "$conf" .yaml)_${arch}
src=${mnist:-$data/mnist_synth_${n_train}_${n_test}_seed$seed}
prepared=$data/prepared

if run_stage 0; then
  log "Stage 0: prepare data -> $prepared"
  if [ -z "$mnist" ] && { [ ! -f "$src/t10k-labels-idx1-ubyte" ] || [ "$overwrite" = true ]; }; then
    aics vae synth --out "$src" --n-train "$n_train" --n-test "$n_test" --seed "$seed"
  fi
  aics vae prepare --src "$src" --out "$prepared" --valid-size "$valid_size" --seed "$seed" "${ow[@]}"
fi

if run_stage 1; then
  log "Stage 1: no features for the VAE (it reads pixels)"
fi

if run_stage 2; then
  for z in $zdims; do
    log "Stage 2: train zdim=$z -> $exp/${tag}_z$z"
    launch "$ngpu" vae train --data "$prepared" --exp "$exp/${tag}_z$z" --conf "$conf" --device "$device" \
      --set "model.zdim=$z" --set "model.arch=$arch" --set "train.seed=$seed" "${ow[@]}"
  done
fi

if run_stage 3; then
  for z in $zdims; do
    log "Stage 3: infer zdim=$z"
    aics vae infer --exp "$exp/${tag}_z$z" --data "$prepared" --split valid --split test --device "$device" "${ow[@]}"
  done
fi

if run_stage 4; then
  for z in $zdims; do
    log "Stage 4: score zdim=$z"
    aics vae score --exp "$exp/${tag}_z$z" --data "$prepared" --device "$device"
  done
  mapfile -t dirs < <(scored_dirs "$exp") # every scored experiment in $exp, also those of earlier runs
  aics vae report "${dirs[@]}" -o "$exp/RESULTS.md"
  log "Scores: $exp/RESULTS.md and $exp/<tag>/scores.json; pictures: $exp/<tag>/infer_best/"
  for d in "${dirs[@]}"; do log "  $d/scores.json  $d/infer_best/latent_map.png"; done
fi
