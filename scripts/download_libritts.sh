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
# shellcheck source-path=SCRIPTDIR source=lib_download.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib_download.sh"
out=${1:-data/libritts}
shift || true
subsets=("$@")
[ ${#subsets[@]} -gt 0 ] || subsets=(dev-clean test-clean)
dl_openslr_mirrors
sums=(
  "dev-clean da0864e1bd26debed35da8a869dd5c04dfc27682921936de7cff9c8a254dbe1a"
  "dev-other d413eda26f3a152ac7c9cf3658ef85504dfb1b625296e5fa83727f5186cca79c"
  "test-clean 234ea5b25859102a87024a4b9b86641f5b5aaaf1197335c95090cde04fe9a4f5"
  "test-other 33a5342094f3bba7ccc2e0500b9e72d558f72eb99328ac8debe1d9080402f10d"
  "train-clean-100 c5608bf1ef74bb621935382b8399c5cdd51cd3ee47cec51f00f885a64c6c7f6b"
  "train-clean-360 ce7cff44dcac46009d18379f37ef36551123a1dc4e5c8e4eb73ae57260de4886"
  "train-other-500 e35f7e34deeb2e2bdfe4403d88c8fdd5fbf64865cae41f027a185a6965f0a5df"
)

dl_need_sum sha256 "the downloads"
dl_need_fetch "from ${DL_MIRRORS[0]}"
dl_check_names subset "$out" "${sums[@]}" -- "${subsets[@]}"

mkdir -p "$out/LibriTTS"
for subset in "${subsets[@]}"; do
  dl_openslr_subset LibriTTS 60 wav "$out" "$subset" "$(dl_lookup "$subset" "${sums[@]}")"
done
echo "LibriTTS ${subsets[*]} is in $out/LibriTTS; next:" \
  "bash recipes/asr_dfcnn/run.sh --corpus $out/LibriTTS --train-set train-clean-100 --valid-set dev-clean" \
  "--subsets test-clean"
