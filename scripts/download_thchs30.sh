#!/usr/bin/env bash
# Usage: bash scripts/download_thchs30.sh [OUT_DIR] [PART ...]    (default: data/thchs30 data_thchs30)
#
# Downloads THCHS-30 (Wang & Zhang, 2015; Apache 2.0; ~30 h of read Mandarin, 16 kHz) from OpenSLR resource 18
# and unpacks it into OUT_DIR. PART: data_thchs30 (6.4 GB: data/ with the wavs and their three-line .wav.trn
# transcripts, train/ dev/ test/ linking into it, lm_word/, lm_phone/), test-noise (1.9 GB, the test set with
# noise added) and resource (24 MB, supplementary resources). No checksum of these archives is pinned here:
# each is checked against the md5sum.txt OpenSLR serves beside it when there is one; when there is none, the
# script says so and prints the archive's MD5 for you to compare with a trusted copy. An interrupted download
# resumes where it stopped (from the next mirror if one fails; OPENSLR_MIRROR=https://... is tried first); an
# archive is unpacked into a temp dir, moved into place when complete and then deleted. Needs internet, curl
# or wget, md5sum (or md5) and tar; data_thchs30 needs ~13 GB free while unpacking.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib_download.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib_download.sh"
out=${1:-data/thchs30}
shift || true
parts=("$@")
[ ${#parts[@]} -gt 0 ] || parts=(data_thchs30)
dl_openslr_mirrors
min_bytes=( # anything much smaller than the archive is an error page
  "data_thchs30 5000000000"
  "test-noise 1500000000"
  "resource 20000000"
)

dl_need_sum md5 "the downloads"
dl_need_fetch "from ${DL_MIRRORS[0]}"

published_md5() { # published_md5 NAME: the MD5 OpenSLR lists for NAME, nothing when no mirror lists one
  local mirror list="$out/.md5sum.txt"
  for mirror in "${DL_MIRRORS[@]}"; do
    if dl_fetch_whole "$mirror/resources/18/md5sum.txt" "$list" 2>/dev/null; then
      awk -v f="$1" '$2 == f || $2 == "*" f { print $1; exit }' "$list"
      rm -f "$list"
      return
    fi
  done
  rm -f "$list"
}
dl_check_names part "$out" "${min_bytes[@]}" -- "${parts[@]}"

mkdir -p "$out"
for part in "${parts[@]}"; do
  done_marker="$out/.$part.unpacked"
  if [ -f "$done_marker" ] || { [ "$part" = data_thchs30 ] && [ -d "$out/data_thchs30/data" ]; }; then
    echo "ok   $out: $part is unpacked (remove it to download again)"
    continue
  fi
  name="$part.tgz"
  archive="$out/$name"
  if [ ! -f "$archive" ]; then
    if ! dl_from_mirrors "$name" "$archive.part" "resources/18/$name" "${DL_MIRRORS[@]}"; then
      echo "error: could not download $name from any mirror; check the connection, run again to resume" >&2
      exit 1
    fi
    size=$(wc -c <"$archive.part" | tr -d ' ')
    if [ "$size" -lt "$(dl_lookup "$part" "${min_bytes[@]}")" ]; then
      rm -f "$archive.part"
      echo "error: $name has only $size bytes, far too few; the download was removed, run again" >&2
      exit 1
    fi
    got=$(dl_sum "$archive.part")
    sum=$(published_md5 "$name")
    if [ -z "$sum" ]; then
      echo "md5  $got  $name (not checked: no md5sum.txt at OpenSLR lists it; compare with a trusted copy)"
    elif [ "$got" != "$sum" ]; then
      rm -f "$archive.part"
      echo "error: $name has MD5 $got, OpenSLR lists $sum; removed the damaged file, run again" >&2
      exit 1
    fi
    mv -f "$archive.part" "$archive"
    echo "got  $archive"
  fi
  dl_unpack "$archive" "$out" # tar keeps the symlinks of train/ dev/ test/ into data/
  if [ "$part" = data_thchs30 ] && [ ! -d "$DL_TMP/data_thchs30/data" ]; then
    echo "error: $name has no data_thchs30/data" >&2
    exit 1
  fi
  for f in "$DL_TMP"/*; do
    if [ -e "$out/$(basename "$f")" ]; then
      echo "error: $out/$(basename "$f") is in the way of $name's copy; move it away and run again" >&2
      exit 1
    fi
  done
  for f in "$DL_TMP"/*; do mv "$f" "$out/"; done
  dl_unpacked "$archive"
  touch "$done_marker"
  echo "got  $part in $out"
done
if [ -d "$out/data_thchs30/data" ]; then
  n=$(find "$out/data_thchs30/data" -name '*.wav.trn' | wc -l | tr -d ' ')
  echo "THCHS-30 ($n transcripts) is in $out/data_thchs30; next:" \
    "bash recipes/asr_dfcnn/run.sh --corpus $out/data_thchs30 --conf recipes/asr_dfcnn/conf/base.yaml" \
    "--subsets test --judge false"
fi
