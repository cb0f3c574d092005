#!/usr/bin/env bash
# Shared option parser for run.sh (the idea of Kaldi's parse_options.sh, written for aics).
# Declare every option as a shell variable with its default, then source this file:
#
#   stage=0; stop_stage=4; conf=conf/base.yaml; zdims="1 2"; overwrite=false
#   help_message="Usage: $0 [options]"
#   . "$(dirname "$0")/../utils/parse_options.sh"
#
# --some-key value (or --some-key=value) sets $some_key; an option whose default is true/false may be
# given without a value (--overwrite means --overwrite true). Unknown options are an error (exit 2).
# Arguments after the options are left in "$@".

while [ $# -gt 0 ]; do
  case "$1" in
    -h | --help)
      echo "${help_message:-Usage: $0 [--key value ...]}"
      exit 0
      ;;
    --*=*)
      _key=${1%%=*}
      _val=${1#*=}
      shift
      ;;
    --*)
      _key=$1
      _name=${_key#--}
      _name=${_name//-/_}
      _cur=""
      # only a well-formed, declared name is ever expanded (never eval'ed): anything else is refused below
      if [[ $_name =~ ^[a-z][a-z0-9_]*$ ]] && declare -p "$_name" >/dev/null 2>&1; then
        _cur=${!_name}
      fi
      if { [ "$_cur" = true ] || [ "$_cur" = false ]; } && { [ $# -lt 2 ] || [[ $2 == --* ]]; }; then
        _val=true
        shift
      else
        [ $# -ge 2 ] || { echo "$0: option $_key needs a value (run with --help)" >&2; exit 2; }
        _val=$2
        shift 2
      fi
      ;;
    *) break ;;
  esac
  _name=${_key#--}
  _name=${_name//-/_}
  if [[ ! $_name =~ ^[a-z][a-z0-9_]*$ ]] || ! declare -p "$_name" >/dev/null 2>&1; then
    echo "$0: unknown option $_key (run with --help)" >&2
    exit 2
  fi
  _cur=${!_name}
  if { [ "$_cur" = true ] || [ "$_cur" = false ]; } && [ "$_val" != true ] && [ "$_val" != false ]; then
    echo "$0: option $_key takes true or false, not '$_val'" >&2
    exit 2
  fi
  printf -v "$_name" '%s' "$_val"
done
unset _key _val _name _cur
