# shellcheck shell=bash
# Helpers for the scripts/download_*.sh scripts, which source this file:
#   . "$(dirname "${BASH_SOURCE[0]}")/lib_download.sh"
# Sourcing it only defines the functions below (it runs nothing, sets no variable and no trap). They expect the
# caller's `set -euo pipefail`; those that fail print "error: ..." to stderr and exit 1, like the scripts did.
# Written to avoid bash-4-only features (macOS ships bash 3.2); not tested on 3.2 here.
#
# dl_need_sum md5|sha256 WHAT  checks for a checksum tool (md5sum or md5; sha256sum or shasum) and picks it for
#                              dl_sum; without one: "error: need md5sum or md5 to check WHAT" (or "need sha256sum
#                              or shasum"). Sets DL_SUM (the tool) and DL_SUM_NAME (MD5 or SHA-256).
# dl_sum FILE                  prints FILE's MD5 or SHA-256 in hex, with the tool dl_need_sum picked.
# dl_need_fetch WHAT           checks for curl or wget and picks it (curl first) for dl_fetch and dl_fetch_whole;
#                              without either: "error: need curl or wget to download WHAT". Sets DL_FETCH.
# dl_fetch URL FILE            downloads URL to FILE, resuming a partial FILE (curl -fL --retry 3 -C -, or
#                              wget -c), with the tool's progress meter; fails as the tool does.
# dl_fetch_whole URL FILE [N]  downloads URL to FILE from the start, quietly (curl -fsSL --retry N, N 2 unless
#                              given, or wget -q); fails as the tool does.
# dl_openslr_mirrors           sets the array DL_MIRRORS to the OpenSLR mirrors in the order they are tried:
#                              $OPENSLR_MIRROR (its trailing / dropped) when set, then www, us and elda.
# dl_from_mirrors NAME FILE PATH MIRROR...
#                              dl_fetch MIRROR/PATH to FILE from each MIRROR in turn until one gives it all,
#                              printing "warning: no (complete) download of NAME from MIRROR" for each that
#                              fails; fails when none gave it (FILE may hold a partial download to resume).
# dl_lookup KEY ENTRY...       prints VALUE of each ENTRY "KEY VALUE" (a table of "name sum" lines); nothing
#                              when no ENTRY has KEY.
# dl_check_names KIND OUT ENTRY... -- NAME...
#                              checks the script's arguments against the table ENTRY... (as for dl_lookup):
#                              "error: 'OUT' is a KIND, not a directory; usage: $0 [OUT_DIR] [KIND ...]" when
#                              OUT is a name in the table (OUT_DIR forgotten), else "error: unknown KIND 'NAME';
#                              use one or more of: <the names>" for the first NAME that is not.
# dl_get_verified FILE SUM WHAT CMD...
#                              unless FILE is there, makes it a download whose sum (the kind dl_need_sum picked)
#                              is SUM: runs CMD... (dl_fetch or dl_from_mirrors) to download or resume FILE.part,
#                              except when FILE.part is already complete (an earlier run finished it but did
#                              not rename it: it cannot be resumed). A FILE.part with the wrong sum after a
#                              download is removed: "error: <FILE's name> has the wrong MD5 (expected SUM);
#                              removed the damaged file, run again"; when CMD failed and FILE.part is not
#                              complete it is kept: "error: could not download WHAT; check the connection, run
#                              again to resume". Renames FILE.part to FILE and prints "got  FILE".
# dl_unpack ARCHIVE DIR        unpacks ARCHIVE (tar) into a new temp dir DL_TMP under DIR (DIR/.unpack.XXXXXX);
#                              an EXIT trap removes DL_TMP if the script stops before dl_unpacked.
# dl_unpacked ARCHIVE          after the caller moved what it needs out of DL_TMP: removes DL_TMP and ARCHIVE.
# dl_openslr_subset CORPUS RESOURCE EXT OUT SUBSET SUM
#                              one LibriSpeech-style subset: "ok   OUT/CORPUS/SUBSET (remove it to download
#                              again)" when that dir is there; else gets SUBSET.tar.gz from OpenSLR resource
#                              RESOURCE (DL_MIRRORS in turn, into OUT, checked against SUM with dl_get_verified),
#                              unpacks it, moves CORPUS/SUBSET to OUT/CORPUS/SUBSET and the files beside it
#                              (SPEAKERS.TXT, ...: the same in every archive) to OUT/CORPUS unless there already,
#                              deletes the archive and prints "got  OUT/CORPUS/SUBSET (N utterances)", N the
#                              number of *.EXT files; "error: SUBSET.tar.gz has no CORPUS/SUBSET" if it lacks it.

dl_need_sum() {
  local tools t
  case $1 in
    md5) DL_SUM_NAME=MD5 tools="md5sum md5" ;;
    sha256) DL_SUM_NAME=SHA-256 tools="sha256sum shasum" ;;
    *) echo "error: dl_need_sum: unknown checksum '$1' (md5 or sha256)" >&2; exit 1 ;;
  esac
  for t in $tools; do
    if command -v "$t" >/dev/null 2>&1; then
      DL_SUM=$t
      return 0
    fi
  done
  echo "error: need ${tools% *} or ${tools#* } to check $2" >&2
  exit 1
}

dl_sum() {
  case ${DL_SUM:?call dl_need_sum first} in
    md5sum) md5sum "$1" | cut -d' ' -f1 ;;
    md5) command md5 -q "$1" ;;
    sha256sum) sha256sum "$1" | cut -d' ' -f1 ;;
    shasum) shasum -a 256 "$1" | cut -d' ' -f1 ;;
  esac
}

dl_need_fetch() {
  if command -v curl >/dev/null 2>&1; then
    DL_FETCH=curl
  elif command -v wget >/dev/null 2>&1; then
    DL_FETCH=wget
  else
    echo "error: need curl or wget to download $1" >&2
    exit 1
  fi
}

dl_fetch() {
  if [ "${DL_FETCH:?call dl_need_fetch first}" = curl ]; then
    curl -fL --retry 3 -C - -o "$2" "$1" # -C -: resume a partial file
  else
    wget -c -O "$2" "$1"
  fi
}

dl_fetch_whole() {
  if [ "${DL_FETCH:?call dl_need_fetch first}" = curl ]; then
    curl -fsSL --retry "${3:-2}" -o "$2" "$1"
  else
    wget -q -O "$2" "$1"
  fi
}

dl_openslr_mirrors() {
  DL_MIRRORS=(https://www.openslr.org https://us.openslr.org https://openslr.elda.org)
  if [ -n "${OPENSLR_MIRROR:-}" ]; then DL_MIRRORS=("${OPENSLR_MIRROR%/}" "${DL_MIRRORS[@]}"); fi
}

dl_from_mirrors() {
  local name=$1 file=$2 path=$3 mirror
  shift 3
  for mirror in "$@"; do
    if dl_fetch "$mirror/$path" "$file"; then
      return 0
    fi
    echo "warning: no (complete) download of $name from $mirror" >&2
  done
  return 1
}

dl_lookup() {
  local key=$1 entry k v
  shift
  for entry in "$@"; do
    read -r k v <<<"$entry"
    if [ "$k" = "$key" ]; then echo "$v"; fi
  done
}

dl_check_names() {
  local kind=$1 out=$2 name
  local entries=()
  shift 2
  while [ $# -gt 0 ] && [ "$1" != -- ]; do
    entries+=("$1")
    shift
  done
  shift # the --
  if [ -n "$(dl_lookup "$out" "${entries[@]}")" ]; then
    echo "error: '$out' is a $kind, not a directory; usage: $0 [OUT_DIR] [$(echo "$kind" | tr '[:lower:]' '[:upper:]') ...]" >&2
    exit 1
  fi
  for name in "$@"; do
    if [ -z "$(dl_lookup "$name" "${entries[@]}")" ]; then
      echo "error: unknown $kind '$name'; use one or more of: ${entries[*]%% *}" >&2
      exit 1
    fi
  done
}

dl_get_verified() {
  local file=$1 sum=$2 what=$3 fetched=false
  shift 3
  if [ -f "$file" ]; then return 0; fi
  if [ -f "$file.part" ] && [ "$(dl_sum "$file.part")" = "$sum" ]; then
    fetched=true
  elif "$@"; then
    fetched=true
  fi
  if [ ! -f "$file.part" ] || [ "$(dl_sum "$file.part")" != "$sum" ]; then
    if $fetched; then
      rm -f "$file.part"
      echo "error: ${file##*/} has the wrong $DL_SUM_NAME (expected $sum); removed the damaged file, run again" >&2
    else
      echo "error: could not download $what; check the connection, run again to resume" >&2
    fi
    exit 1
  fi
  mv -f "$file.part" "$file"
  echo "got  $file"
}

dl_unpack() {
  DL_TMP=""
  trap 'if [ -n "${DL_TMP:-}" ]; then rm -rf "$DL_TMP"; fi' EXIT
  DL_TMP=$(mktemp -d "$2/.unpack.XXXXXX")
  tar -xf "$1" -C "$DL_TMP"
}

dl_unpacked() {
  rm -rf "$DL_TMP"
  DL_TMP=""
  rm -f "$1"
}

dl_openslr_subset() {
  local corpus=$1 resource=$2 ext=$3 out=$4 subset=$5 sum=$6 name archive f n
  if [ -d "$out/$corpus/$subset" ]; then
    echo "ok   $out/$corpus/$subset (remove it to download again)"
    return 0
  fi
  name="$subset.tar.gz"
  archive="$out/$name"
  dl_get_verified "$archive" "$sum" "$name from any mirror" \
    dl_from_mirrors "$name" "$archive.part" "resources/$resource/$name" "${DL_MIRRORS[@]}"
  dl_unpack "$archive" "$out"
  [ -d "$DL_TMP/$corpus/$subset" ] || { echo "error: $name has no $corpus/$subset" >&2; exit 1; }
  mv "$DL_TMP/$corpus/$subset" "$out/$corpus/$subset"
  for f in "$DL_TMP/$corpus"/*; do
    if [ -f "$f" ] && [ ! -e "$out/$corpus/$(basename "$f")" ]; then mv "$f" "$out/$corpus/"; fi
  done
  dl_unpacked "$archive"
  n=$(find "$out/$corpus/$subset" -name "*.$ext" | wc -l | tr -d ' ')
  echo "got  $out/$corpus/$subset ($n utterances)"
}
