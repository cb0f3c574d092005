#!/usr/bin/env bash
# Sourced by every recipe's run.sh: puts aics on PATH and defines log().
#   . "$(dirname "$0")/../utils/lib.sh"

AICS_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export AICS_ROOT
# Prefer the repository's own environment (made by `make setup`) unless another one is active.
if [ -z "${VIRTUAL_ENV:-}" ] && [ -x "$AICS_ROOT/.venv/bin/aics" ]; then
  PATH="$AICS_ROOT/.venv/bin:$PATH"
fi
if ! command -v aics >/dev/null 2>&1; then
  echo "aics: error: the aics command is not installed; run 'make setup' in $AICS_ROOT first" >&2
  exit 2
fi

# log "Stage 2: train" -> "2026-11-22T10:00:00 (run.sh:42) Stage 2: train" on stderr
log() {
  echo "$(date '+%Y-%m-%dT%H:%M:%S') ($(basename "${BASH_SOURCE[1]}"):${BASH_LINENO[0]}) $*" >&2
}

# run_stage N: true when N lies within --stage .. --stop-stage
run_stage() {
  [ "$stage" -le "$1" ] && [ "$stop_stage" -ge "$1" ]
}
