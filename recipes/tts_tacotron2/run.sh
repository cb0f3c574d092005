#!/usr/bin/env bash
# Speech synthesis recipe: Tacotron2 (+ WaveGlow or Griffin-Lim), trained and scored. Offline by default: one
# voice of Debian's festival synthesizer (an LJSpeech-layout corpus written by `aics asr synth`); real
# LJSpeech with --ljspeech DIR (scripts/download_ljspeech.sh).
#
#   Stage 0: corpus (synthesize it unless --ljspeech is given), then prepare: NVIDIA's train/valid/test
#            filelists (wav path|text)
#   Stage 1: features (NVIDIA's 80-band log mel, cached)
#   Stage 2: train Tacotron2 -> $exp/$name
#   Stage 3: train WaveGlow -> $exp/${name}_waveglow (off unless --waveglow true: days on a CPU)
#   Stage 4: say the test sentences (Griffin-Lim, and WaveGlow when stage 3 trained one)
#   Stage 5: score: the pocketsphinx judge's WER on the synthesised and on the real test sentences, MCD-DTW,
#            attention health, real-time factor -> $exp/$name/RESULTS.md
#
# Usage: bash recipes/tts_tacotron2/run.sh [--stage N] [--stop-stage M] [--ljspeech DIR] [--conf FILE]
set -euo pipefail
RECIPE=$(cd "$(dirname "$0")" && pwd)
. "$RECIPE/../utils/lib.sh"

stage=0
stop_stage=5
conf=$RECIPE/conf/cpu.yaml   # Tacotron2 size and training (conf/base.yaml: NVIDIA's full size, on a GPU)
overlay=""                   # an extra YAML applied after --conf, e.g. recipes/tts_tacotron2/conf/tiny.yaml
ljspeech=""                  # real LJSpeech-1.1 directory; empty: synthesize a corpus
voice=festival-slt           # synthetic corpus: the voice (aics asr synth --list-voices)
minutes=90                   # synthetic corpus: minutes of speech
max_words=24                 # synthetic corpus: longest sentence in words
valid_frac=0.03              # share of the utterances in the valid filelist
test_frac=0.05               # share in the test filelist
name=tacotron2               # experiment name under $exp
init=""                      # stage 2: start from these Tacotron2 weights (train.init), e.g. with conf/cpu_more.yaml
data=data/tts
exp=exp/tts
waveglow=false               # stage 3: train a WaveGlow (conf/waveglow_cpu.yaml; waveglow_base.yaml on a GPU)
waveglow_conf=$RECIPE/conf/waveglow_cpu.yaml
ckpt=best                    # stage 4: best (lowest valid loss) or last
max_decoder_steps=0          # stage 4: decoder step limit (0: the model's)
judge=true                   # stage 5: run the pocketsphinx judge
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
tag=$name
if [ -n "$overlay" ]; then
  confs+=(--conf "$overlay")
  tag=${name}_$(basename "$overlay" .yaml)
fi
src=${ljspeech:-$data/${voice}_${minutes}min_seed$seed}
prepared=$data/prepared_$(basename "$src")
feats=$data/feats_$(basename "$src")

if run_stage 0; then
  log "Stage 0: corpus $src, prepare -> $prepared"
  if [ -z "$ljspeech" ]; then
    aics asr synth --out "$src" --layout ljspeech --voice "$voice" --minutes "$minutes" --max-words "$max_words" \
      --speed-range 1 1 --pitch-range 1 1 --seed "$seed" "${ow[@]}" >/dev/null
  fi
  aics tts prepare --src "$src" --out "$prepared" --valid-frac "$valid_frac" --test-frac "$test_frac" \
    --seed "$seed" "${ow[@]}"
fi

if run_stage 1; then
  log "Stage 1: features -> $feats"
  aics tts features --data "$prepared" --out "$feats" "${confs[@]}" "${ow[@]}"
fi

if run_stage 2; then
  log "Stage 2: train Tacotron2 -> $exp/$tag"
  sets=(--set "train.seed=$seed")
  [ -z "$init" ] || sets+=(--set "train.init=$init")
  launch "$ngpu" tts train --data "$feats" --exp "$exp/$tag" "${confs[@]}" --device "$device" "${sets[@]}" \
    "${ow[@]}"
fi

if run_stage 3 && [ "$waveglow" = true ]; then
  log "Stage 3: train WaveGlow -> $exp/${tag}_waveglow"
  launch "$ngpu" tts train-waveglow --data "$feats" --exp "$exp/${tag}_waveglow" --conf "$waveglow_conf" \
    --device "$device" --set "train.seed=$seed" "${ow[@]}"
fi

steps=()
[ "$max_decoder_steps" = 0 ] || steps=(--max-decoder-steps "$max_decoder_steps")
vocoders=(griffinlim)
[ -f "$exp/${tag}_waveglow/ckpt/best.pt" ] && vocoders+=(waveglow)

if run_stage 4; then
  for v in "${vocoders[@]}"; do
    log "Stage 4: say the test sentences with $v -> $exp/$tag/decode_test_$v"
    wg=()
    [ "$v" = griffinlim ] || wg=(--waveglow "$exp/${tag}_waveglow/ckpt/best.pt")
    aics tts decode --tacotron2 "$exp/$tag/ckpt/$ckpt.pt" --data "$feats" --subset test \
      --out "$exp/$tag/decode_test_$v" --vocoder "$v" "${wg[@]}" "${steps[@]}" --seed "$seed" \
      --device "$device" "${ow[@]}"
  done
fi

if run_stage 5; then
  j=(--judge)
  [ "$judge" = true ] || j=(--no-judge)
  for v in "${vocoders[@]}"; do
    log "Stage 5: score $exp/$tag/decode_test_$v"
    aics tts score --decode "$exp/$tag/decode_test_$v" "${j[@]}" "${ow[@]}" >/dev/null
  done
  aics tts report "$exp/$tag" -o "$exp/$tag/RESULTS.md"
  log "Scores: $exp/$tag/RESULTS.md, $exp/$tag/decode_test_*/score/scores.json; curves: tensorboard --logdir $exp"
fi
