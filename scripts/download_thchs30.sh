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
out=${1:-data/thchs30}
shift || true
parts=("$@")
[ ${#parts[@]} -gt 0 ] || parts=(data_thchs30)
mirrors=(https://www.openslr.org https://us.openslr.org https://openslr.elda.org)
if [ -n "${OPENSLR_MIRROR:-}" ]; then mirrors=("${OPENSLR_MIRROR%/}" "${mirrors[@]}"); fi
min_bytes=( # anything much smaller than the archive is an error page
  "data_thchs30 5000000000"
  "test-noise 1500000000"
  "resource 20000000"
)

if command -v md5sum >/dev/null 2>&1; then
  md5() { md5sum "$1" | cut -d' ' -f1; }
elif command -v md5 >/dev/null 2>&1; then
  md5() { md5 -q "$1"; }
else
  echo "error: need md5sum or md5 to check the downloads" >&2
  exit 1
fi
if command -v curl >/dev/null 2>&1; then
  fetch() { curl -fL --retry 3 -C - -o "$2" "$1"; } # -C -: resume a partial file
  fetch_small() { curl -fsSL --retry 2 -o "$2" "$1"; }
elif command -v wget >/dev/null 2>&1; then
  fetch() { wget -c -O "$2" "$1"; }
  fetch_small() { wget -q -O "$2" "$1"; }
else
  echo "error: need curl or wget to download from ${mirrors[0]}" >&2
  exit 1
fi

min_of() { # min_of PART: its smallest plausible size, nothing for an unknown part
  local entry p n
  for entry in "${min_bytes[@]}"; do
    read -r p n <<<"$entry"
    if [ "$p" = "$1" ]; then echo "$n"; fi
  done
}
published_md5() { # published_md5 NAME: the MD5 OpenSLR lists for NAME, nothing when no mirror lists one
  local mirror list="$out/.md5sum.txt"
  for mirror in "${mirrors[@]}"; do
    if fetch_small "$mirror/resources/18/md5sum.txt" "$list" 2>/dev/null; then
      awk -v f="$1" '$2 == f || $2 == "*" f { print $1; exit }' "$list"
      rm -f "$list"
      return
    fi
  done
  rm -f "$list"
}
if [ -n "$(min_of "$out")" ]; then
  echo "error: '$out' is a part, not a directory; usage: $0 [OUT_DIR] [PART ...]" >&2
  exit 1
fi
for part in "${parts[@]}"; do
  if [ -z "$(min_of "$part")" ]; then
    echo "error: unknown part '$part'; use one or more of: ${min_bytes[*]%% *}" >&2
    exit 1
  fi
done

mkdir -p "$out"
tmp=""
trap 'if [ -n "$tmp" ]; then rm -rf "$tmp"; fi' EXIT
for part in "${parts[@]}"; do
  done_marker="$out/.$part.unpacked"
  if [ -f "$done_marker" ] || { [ "$part" = data_thchs30 ] && [ -d "$out/data_thchs30/data" ]; }; then
    echo "ok   $out: $part is unpacked (remove it to download again)"
    continue
  fi
  name="$part.tgz"
  archive="$out/$name"
  if [ ! -f "$archive" ]; then
    fetched=false
    for mirror in "${mirrors[@]}"; do
      if fetch "$mirror/resources/18/$name" "$archive.part"; then
        fetched=true
        break
      fi
      echo "warning: no (complete) download of $name from $mirror" >&2
    done
    if ! $fetched; then
      echo "error: could not download $name from any mirror; check the connection, run again to resume" >&2
      exit 1
    fi
    size=$(wc -c <"$archive.part" | tr -d ' ')
    if [ "$size" -lt "$(min_of "$part")" ]; then
      rm -f "$archive.part"
      echo "error: $name has only $size bytes, far too few; the download was removed, run again" >&2
      exit 1
    fi
    got=$(md5 "$archive.part")
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
  tmp=$(mktemp -d "$out/.unpack.XXXXXX")
  tar -xf "$archive" -C "$tmp" # keeps the symlinks of train/ dev/ test/ into data/
  if [ "$part" = data_thchs30 ] && [ ! -d "$tmp/data_thchs30/data" ]; then
    echo "error: $name has no data_thchs30/data" >&2
    exit 1
  fi
  for f in "$tmp"/*; do
    if [ -e "$out/$(basename "$f")" ]; then
      echo "error: $out/$(basename "$f") is in the way of $name's copy; move it away and run again" >&2
      exit 1
    fi
  done
  for f in "$tmp"/*; do mv "$f" "$out/"; done
  rm -rf "$tmp"
  tmp=""
  rm -f "$archive"
  touch "$done_marker"
  echo "got  $part in $out"
done
if [ -d "$out/data_thchs30/data" ]; then
  n=$(find "$out/data_thchs30/data" -name '*.wav.trn' | wc -l | tr -d ' ')
  echo "THCHS-30 ($n transcripts) is in $out/data_thchs30; next:" \
    "bash recipes/asr_dfcnn/run.sh --corpus $out/data_thchs30 --conf recipes/asr_dfcnn/conf/base.yaml" \
    "--subsets test --judge false"
fi
