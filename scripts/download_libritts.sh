#!/usr/bin/env bash
# Usage: bash scripts/download_libritts.sh [OUT_DIR] [SUBSET ...]
#        (default: data/libritts dev-clean test-clean)
#
# Downloads LibriTTS subsets (Zen et al., 2019; CC BY 4.0; LibriSpeech's recordings cut at sentences, 24 kHz
# wav with .normalized.txt and .original.txt beside each) from OpenSLR resource 60, checks each archive's
# SHA-256 (pinned below: the sums torchaudio's LibriTTS loader checks) and unpacks it to
# OUT_DIR/LibriTTS/SUBSET. SUBSET: dev-clean (1.2 GB), dev-other (~0.9 GB), test-clean (1.2 GB), test-other
# (~1 GB), train-clean-100 (7.7 GB), train-clean-360 (~27 GB), train-other-500 (~44 GB). An interrupted
# download resumes where it stopped (from the next mirror if one fails; OPENSLR_MIRROR=https://... is tried
# first); an archive is unpacked into a temp dir, moved into place when complete and then deleted. Needs
# internet, curl or wget, sha256sum (or shasum) and tar.
set -euo pipefail
out=${1:-data/libritts}
shift || true
subsets=("$@")
[ ${#subsets[@]} -gt 0 ] || subsets=(dev-clean test-clean)
mirrors=(https://www.openslr.org https://us.openslr.org https://openslr.elda.org)
if [ -n "${OPENSLR_MIRROR:-}" ]; then mirrors=("${OPENSLR_MIRROR%/}" "${mirrors[@]}"); fi
sums=(
  "dev-clean da0864e1bd26debed35da8a869dd5c04dfc27682921936de7cff9c8a254dbe1a"
  "dev-other d413eda26f3a152ac7c9cf3658ef85504dfb1b625296e5fa83727f5186cca79c"
  "test-clean 234ea5b25859102a87024a4b9b86641f5b5aaaf1197335c95090cde04fe9a4f5"
  "test-other 33a5342094f3bba7ccc2e0500b9e72d558f72eb99328ac8debe1d9080402f10d"
  "train-clean-100 c5608bf1ef74bb621935382b8399c5cdd51cd3ee47cec51f00f885a64c6c7f6b"
  "train-clean-360 ce7cff44dcac46009d18379f37ef36551123a1dc4e5c8e4eb73ae57260de4886"
  "train-other-500 e35f7e34deeb2e2bdfe4403d88c8fdd5fbf64865cae41f027a185a6965f0a5df"
)

if command -v sha256sum >/dev/null 2>&1; then
  sha256() { sha256sum "$1" | cut -d' ' -f1; }
elif command -v shasum >/dev/null 2>&1; then
  sha256() { shasum -a 256 "$1" | cut -d' ' -f1; }
else
  echo "error: need sha256sum or shasum to check the downloads" >&2
  exit 1
fi
if command -v curl >/dev/null 2>&1; then
  fetch() { curl -fL --retry 3 -C - -o "$2" "$1"; } # -C -: resume a partial file
elif command -v wget >/dev/null 2>&1; then
  fetch() { wget -c -O "$2" "$1"; }
else
  echo "error: need curl or wget to download from ${mirrors[0]}" >&2
  exit 1
fi

sum_of() { # sum_of SUBSET: its SHA-256, nothing for an unknown subset
  local entry s m
  for entry in "${sums[@]}"; do
    read -r s m <<<"$entry"
    if [ "$s" = "$1" ]; then echo "$m"; fi
  done
}
if [ -n "$(sum_of "$out")" ]; then
  echo "error: '$out' is a subset, not a directory; usage: $0 [OUT_DIR] [SUBSET ...]" >&2
  exit 1
fi
for subset in "${subsets[@]}"; do
  if [ -z "$(sum_of "$subset")" ]; then
    echo "error: unknown subset '$subset'; use one or more of: ${sums[*]%% *}" >&2
    exit 1
  fi
done

mkdir -p "$out/LibriTTS"
tmp=""
trap 'if [ -n "$tmp" ]; then rm -rf "$tmp"; fi' EXIT
for subset in "${subsets[@]}"; do
  if [ -d "$out/LibriTTS/$subset" ]; then
    echo "ok   $out/LibriTTS/$subset (remove it to download again)"
    continue
  fi
  sum=$(sum_of "$subset")
  name="$subset.tar.gz"
  archive="$out/$name"
  if [ ! -f "$archive" ]; then
    fetched=false
    # a .part that an earlier run finished but did not rename cannot be resumed: its sum says it is complete
    if [ -f "$archive.part" ] && [ "$(sha256 "$archive.part")" = "$sum" ]; then
      fetched=true
    else
      for mirror in "${mirrors[@]}"; do
        if fetch "$mirror/resources/60/$name" "$archive.part"; then
          fetched=true
          break
        fi
        echo "warning: no (complete) download of $name from $mirror" >&2
      done
    fi
    if [ ! -f "$archive.part" ] || [ "$(sha256 "$archive.part")" != "$sum" ]; then
      if $fetched; then
        rm -f "$archive.part"
        echo "error: $name has the wrong SHA-256 (expected $sum); removed the damaged file, run again" >&2
      else
        echo "error: could not download $name from any mirror; check the connection, run again to resume" >&2
      fi
      exit 1
    fi
    mv -f "$archive.part" "$archive"
    echo "got  $archive"
  fi
  tmp=$(mktemp -d "$out/.unpack.XXXXXX")
  tar -xf "$archive" -C "$tmp"
  [ -d "$tmp/LibriTTS/$subset" ] || { echo "error: $name has no LibriTTS/$subset" >&2; exit 1; }
  mv "$tmp/LibriTTS/$subset" "$out/LibriTTS/$subset"
  for f in "$tmp/LibriTTS"/*; do # speakers.tsv, SPEAKERS.txt, ...: the same in every archive
    if [ -f "$f" ] && [ ! -e "$out/LibriTTS/$(basename "$f")" ]; then mv "$f" "$out/LibriTTS/"; fi
  done
  rm -rf "$tmp"
  tmp=""
  rm -f "$archive"
  n=$(find "$out/LibriTTS/$subset" -name '*.wav' | wc -l | tr -d ' ')
  echo "got  $out/LibriTTS/$subset ($n utterances)"
done
echo "LibriTTS ${subsets[*]} is in $out/LibriTTS; next:" \
  "bash recipes/asr_dfcnn/run.sh --corpus $out/LibriTTS --train-set train-clean-100 --valid-set dev-clean" \
  "--subsets test-clean"
