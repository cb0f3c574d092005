#!/usr/bin/env bash
# Sourced by every recipe's run.sh before its options: defines log(), run_stage(), usage(),
# check_options() and require_aics().
#   . "$(dirname "$0")/../utils/lib.sh"

AICS_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export AICS_ROOT

# log "Stage 2: train" -> "2026-11-22T10:00:00 (run.sh:42) Stage 2: train" on stderr
log() {
  echo "$(date '+%Y-%m-%dT%H:%M:%S') ($(basename "${BASH_SOURCE[1]}"):${BASH_LINENO[0]}) $*" >&2
}

# usage FILE: the comment block at the top of FILE (after the #! line), then its options: every
# `name=default  # comment` line before `help_message=`, shown as `--name default  comment`
usage() {
  awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$1"
  echo
  echo "Options (default):"
  awk '/^help_message=/ { exit }
       /^[a-z_]+=/ {
         line = $0; name = substr(line, 1, index(line, "=") - 1); rest = substr(line, index(line, "=") + 1)
         value = rest; note = ""
         if (index(rest, "#") > 0) { value = substr(rest, 1, index(rest, "#") - 1); note = substr(rest, index(rest, "#") + 1) }
         gsub(/[ \t]+$/, "", value); gsub(/^ +/, "", note); gsub(/_/, "-", name)
         printf "  --%-14s %-28s %s\n", name, value, note
       }' "$1"
}

# run_stage N: true when N lies within --stage .. --stop-stage; it also tells the aics commands of the stage
# which recipe stage they run in, so a "redo it" hint names that stage alone (not a bare --overwrite true)
run_stage() {
  if [ "$stage" -le "$1" ] && [ "$stop_stage" -ge "$1" ]; then
    export AICS_RECIPE=$0 AICS_RECIPE_STAGE=$1
    return 0
  fi
  return 1
}

# check_options "$@" (after parse_options.sh): no stray arguments, whole numbers where they must be
check_options() {
  if [ $# -gt 0 ]; then
    echo "$0: unexpected argument '$1' (options are --key value; run with --help)" >&2
    exit 2
  fi
  local name
  for name in stage stop_stage ngpu; do
    if declare -p "$name" >/dev/null 2>&1 && [[ ! ${!name} =~ ^[0-9]+$ ]]; then
      echo "$0: --${name//_/-} takes a whole number, not '${!name}'" >&2
      exit 2
    fi
  done
}

# require_aics: put the repository's environment on PATH (unless another one is active) and check aics
require_aics() {
  if [ -z "${VIRTUAL_ENV:-}" ] && [ -x "$AICS_ROOT/.venv/bin/aics" ]; then
    PATH="$AICS_ROOT/.venv/bin:$PATH"
  fi
  if ! command -v aics >/dev/null 2>&1; then
    echo "aics: error: the aics command is not installed; run 'make setup' in $AICS_ROOT first" >&2
    exit 2
  fi
}

# scored_dirs EXP: every experiment directly under EXP that has a scores.json, one a line (so a report
# covers every finished model there, not only those of the last run)
scored_dirs() {
  local d
  for d in "$1"/*/; do
    [ -f "$d/scores.json" ] && echo "${d%/}"
  done
  return 0
}

# launch NGPU ARGS...: `aics ARGS`, or under torchrun with NGPU processes when NGPU > 1
launch() {
  local n=$1
  shift
  if [ "$n" -gt 1 ]; then
    torchrun --standalone --nproc-per-node "$n" -m aics "$@"
  else
    aics "$@"
  fi
}
