#!/usr/bin/env bash
# SQuAD v1.1 recipe: fine-tune a pretrained BERT for extractive question answering, score it with the
# official v1.1 rules, distil it into a smaller student. Offline by default: synthetic SQuAD-format data and
# the MiniLM-L6 weights the set-up installs; real data with --squad DIR (scripts/download_squad.sh) and any
# Hugging Face BERT with --pretrained DIR (e.g. the course's pretrain_bert_base_cased).
#
#   Stage 0: data (synthesize it unless --squad is given) and the lexical-overlap baseline on dev
#   Stage 1: import the pretrained model, then prepare: validate, tokenise, cut windows
#   Stage 2: fine-tune -> $exp/$tag
#   Stage 3: predict dev with best.pt -> $exp/$tag/predict_best/dev-v1.1/{predictions,nbest_predictions}.json
#   Stage 4: score EM/F1 -> scores.json, $exp/$tag/RESULTS.md, $exp/RESULTS.md
#   Stage 5: distil into a --student-layers student -> $exp/${tag}_student$N, predict and score it
#   Stage 6: export the fine-tuned model as a Hugging Face dir -> $exp/$tag/hf
#
# Usage: bash recipes/bert_squad/run.sh [--stage N] [--stop-stage M] [--squad DIR] [--pretrained DIR]
set -euo pipefail
RECIPE=$(cd "$(dirname "$0")" && pwd)
. "$RECIPE/../utils/lib.sh"

stage=0
stop_stage=6
conf=$RECIPE/conf/minilm.yaml   # training config (conf/base.yaml: BERT-base on real SQuAD, on a GPU)
overlay=""                      # an extra YAML applied after --conf, e.g. recipes/bert_squad/conf/tiny.yaml
squad=""                        # directory with train-v1.1.json and dev-v1.1.json; empty: synthesize
pretrained=""                   # Hugging Face BERT dir; empty: the MiniLM-L6 installed by the set-up
name=minilm                     # the pretrained model's name in data/ and exp/ paths
random_init=false               # true: train the same architecture from random weights (the tokenizer stays)
data=data/squad
exp=exp/squad
train_paragraphs=1200           # synthetic data only
dev_paragraphs=200
max_seq_length=384
doc_stride=128
max_query_length=64
student_layers=3                # stage 5: layers of the student (from the teacher's, evenly spaced)
student_conf=$RECIPE/conf/student.yaml
ngpu=1                          # >1: train with torchrun --nproc-per-node $ngpu
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
suffix=""
if [ -n "$overlay" ]; then
  confs+=(--conf "$overlay")
  suffix=_$(basename "$overlay" .yaml)
fi
raw=${squad:-$data/synth_${train_paragraphs}_${dev_paragraphs}_seed$seed}
model_dir=$data/pretrained/$name
prepared=$data/prepared_${name}_${max_seq_length}_${doc_stride}
tag=$name$suffix
init=(--init "$model_dir")
if [ "$random_init" = true ]; then
  tag=${name}_random$suffix
  init+=(--set model.random_weights=true)
fi
student=${tag}_student$student_layers
dev_json=$raw/dev-v1.1.json

if [ -z "$pretrained" ] && run_stage 1; then
  pretrained=$(python -c 'from aics.tasks.squad.data import find_minilm; print(find_minilm() or "")')
  if [ -z "$pretrained" ]; then
    echo "aics: error: the MiniLM weights are not installed; run 'make setup', or pass --pretrained DIR" >&2
    exit 2
  fi
fi

if run_stage 0; then
  log "Stage 0: data $raw and the lexical baseline"
  if [ -z "$squad" ] && { [ ! -f "$dev_json" ] || [ "$overwrite" = true ]; }; then
    aics squad synth --out "$raw" --train-paragraphs "$train_paragraphs" --dev-paragraphs "$dev_paragraphs" \
      --seed "$seed"
  fi
  aics squad baseline --data "$dev_json" --out "$exp/lexical_baseline"
fi

if run_stage 1; then
  log "Stage 1: import $pretrained -> $model_dir; prepare $raw -> $prepared"
  aics squad import "$pretrained" --out "$model_dir" "${ow[@]}"
  aics squad prepare --src "$raw" --tokenizer "$model_dir" --out "$prepared" --max-seq-length "$max_seq_length" \
    --doc-stride "$doc_stride" --max-query-length "$max_query_length" "${ow[@]}"
fi

if run_stage 2; then
  log "Stage 2: fine-tune $model_dir -> $exp/$tag"
  launch "$ngpu" squad train --data "$prepared" --exp "$exp/$tag" "${init[@]}" "${confs[@]}" \
    --device "$device" --set "train.seed=$seed" "${ow[@]}"
fi

if run_stage 3; then
  log "Stage 3: predict $dev_json with $exp/$tag/ckpt/best.pt"
  aics squad predict --ckpt "$exp/$tag/ckpt/best.pt" --data "$dev_json" --device "$device"
fi

if run_stage 4; then
  log "Stage 4: score $exp/$tag"
  aics squad eval --predictions "$exp/$tag/predict_best/dev-v1.1/predictions.json" --data "$dev_json"
fi

if run_stage 5; then
  log "Stage 5: distil $exp/$tag into $student_layers layers -> $exp/$student"
  student_confs=(--conf "$student_conf")
  [ -z "$overlay" ] || student_confs+=(--conf "$overlay")
  launch "$ngpu" squad distill --teacher "$exp/$tag" --data "$prepared" --exp "$exp/$student" \
    --layers "$student_layers" "${student_confs[@]}" --device "$device" --set "train.seed=$seed" "${ow[@]}"
  aics squad eval --ckpt "$exp/$student/ckpt/best.pt" --data "$dev_json" --device "$device"
fi

if run_stage 4 || run_stage 5; then
  mapfile -t dirs < <(scored_dirs "$exp")
  aics squad report "${dirs[@]}" -o "$exp/RESULTS.md"
  log "Scores: $exp/RESULTS.md and $exp/<tag>/scores.json; curves: tensorboard --logdir $exp"
fi

if run_stage 6; then
  log "Stage 6: export $exp/$tag -> $exp/$tag/hf"
  aics squad export --ckpt "$exp/$tag/ckpt/best.pt" --out "$exp/$tag/hf" "${ow[@]}"
fi
