#!/usr/bin/env bash
# Speech recognition recipe: DFCNN + CTC (a spectrogram read as an image by a VGG-style CNN). Offline by
# default: an English corpus synthesised with Debian's speech synthesizers (LibriTTS layout, one voice held
# out); a real corpus with --corpus DIR (LJSpeech, LibriTTS, LibriSpeech or THCHS-30; scripts/download_*.sh),
# e.g. --corpus data/LibriSpeech --train-set train-clean-100 --valid-set dev-clean --subsets test-clean.
#
#   Stage 0: corpus (synthesize it unless --corpus is given), then prepare: validate, output units, manifests
#   Stage 1: features (log-mel or log spectrogram, normalised per utterance)
#   Stage 2: train -> $exp/$name
#   Stage 3: decode every subset in --subsets (the mean of the last --avg epochs' weights): greedy, prefix
#            beam search, beam search with a character n-gram LM trained on the training transcripts
#   Stage 4: the pocketsphinx judge on the same subsets' own recordings (the level synthesis is held to);
#            $exp/$name/RESULTS.md and $exp/RESULTS.md
#
# Usage: bash recipes/asr_dfcnn/run.sh [--stage N] [--stop-stage M] [--corpus DIR] [--conf FILE]
set -euo pipefail
RECIPE=$(cd "$(dirname "$0")" && pwd)
. "$RECIPE/../utils/lib.sh"

stage=0
stop_stage=4
conf=$RECIPE/conf/cpu.yaml   # model and training (conf/base.yaml: the seed's full size, on a GPU)
overlay=""                   # an extra YAML applied after --conf, e.g. recipes/asr_dfcnn/conf/tiny.yaml
corpus=""                    # real corpus directory; empty: synthesize
format=auto                  # corpus layout: auto, ljspeech, libritts, librispeech, thchs30
name=dfcnn                   # experiment name under $exp
data=data/asr
exp=exp/asr
minutes=60                   # synthetic corpus: minutes of training speech
test_minutes=4               # synthetic corpus: minutes of dev, test and held-out-voice speech each
voices="festival-kal festival-ked flite-awb flite-slt"  # synthetic corpus: the voices of train/dev/test
heldout_voice=flite-rms      # synthetic corpus: a speaker heard only in test-heldout (empty: none)
vocab_size=0                 # synthetic corpus: words per word class (0: all)
train_set=train              # the corpus's training subset (LibriSpeech: train-clean-100)
valid_set=dev                # the subset that picks best.pt (LibriSpeech: dev-clean)
subsets="test test-heldout"  # stages 3 and 4: subsets to decode and judge (missing ones are skipped)
beam=20
lm_order=7                   # the character n-gram LM of stage 3
lm_weight=1.5                # stage 3: LM weight and per-unit bonus of shallow fusion (chosen on dev)
lm_bonus=3.0
avg=5                        # stage 3: decode the mean weights of the last N epochs (1: best.pt); at most
                             # the epochs trained, and the config must keep them (train.keep_epochs >= N or 0)
judge=true                   # stage 4: run the pocketsphinx judge (English corpora only)
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
src=${corpus:-$data/synth_${minutes}min_v${vocab_size}_seed$seed}
prepared=$data/prepared_$(basename "$src")
feats=$data/feats_$(basename "$src")_$(basename "$conf" .yaml)
[ -z "$overlay" ] || feats=${feats}_$(basename "$overlay" .yaml)

if run_stage 0; then
  log "Stage 0: corpus $src, prepare -> $prepared"
  if [ -z "$corpus" ]; then
    args=(--out "$src" --minutes "$minutes" --dev-minutes "$test_minutes" --test-minutes "$test_minutes"
      --heldout-minutes "$test_minutes" --seed "$seed")
    for v in $voices; do args+=(--voice "$v"); done
    [ -z "$heldout_voice" ] || args+=(--heldout-voice "$heldout_voice")
    [ "$vocab_size" = 0 ] || args+=(--vocab-size "$vocab_size")
    aics asr synth "${args[@]}" "${ow[@]}" >/dev/null
  fi
  aics asr prepare --src "$src" --out "$prepared" --format "$format" --train-set "$train_set" "${ow[@]}"
fi

if run_stage 1; then
  log "Stage 1: features -> $feats"
  aics asr features --data "$prepared" --out "$feats" "${confs[@]}" "${ow[@]}"
fi

if run_stage 2; then
  log "Stage 2: train -> $exp/$tag"
  launch "$ngpu" asr train --data "$feats" --exp "$exp/$tag" "${confs[@]}" --device "$device" \
    --set "train.seed=$seed" --set "train.train_set=$train_set" --set "train.valid_set=$valid_set" "${ow[@]}"
fi

present() { [ -f "$feats/$1.jsonl" ]; }

if run_stage 3; then
  lm=$exp/$tag/lm/char${lm_order}.arpa
  log "Stage 3: character ${lm_order}-gram LM -> $lm; decode $subsets"
  mkdir -p "$exp/$tag/lm"
  aics asr ngram --data "$prepared" --subset "$train_set" --out "$lm" --unit char --order "$lm_order"
  model=(--ckpt best)
  [ "$avg" -le 1 ] || model=(--ckpt last --avg "$avg")
  for s in $subsets; do
    present "$s" || { log "no subset $s in $feats: skipped"; continue; }
    aics asr decode --exp "$exp/$tag" --data "$feats" --subset "$s" "${model[@]}" --method greedy \
      --device "$device"
    aics asr decode --exp "$exp/$tag" --data "$feats" --subset "$s" "${model[@]}" --method beam \
      --beam "$beam" --device "$device"
    aics asr decode --exp "$exp/$tag" --data "$feats" --subset "$s" "${model[@]}" --method beam \
      --beam "$beam" --lm "$lm" --lm-weight "$lm_weight" --bonus "$lm_bonus" --device "$device"
  done
fi

if run_stage 4; then
  if [ "$judge" = true ] && grep -q '"units": "char"' "$prepared/stats.json"; then
    for s in $subsets; do
      present "$s" || continue
      log "Stage 4: pocketsphinx judge on the recordings of $s"
      aics asr judge --manifest "$prepared/$s.jsonl" --out "$exp/$tag/judge_pocketsphinx_$s" "${ow[@]}"
    done
  fi
  aics asr report "$exp/$tag" -o "$exp/$tag/RESULTS.md" >/dev/null
  mapfile -t dirs < <(for d in "$exp"/*/; do ls "$d"decode_*/scores.json >/dev/null 2>&1 && echo "${d%/}"; done)
  aics asr report "${dirs[@]}" -o "$exp/RESULTS.md"
  log "Scores: $exp/$tag/RESULTS.md, $exp/$tag/decode_*/scores.json; curves: tensorboard --logdir $exp"
fi
