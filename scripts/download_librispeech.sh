#!/usr/bin/env bash
# Usage: bash scripts/download_librispeech.sh [OUT_DIR] [SUBSET ...]
#        (default: data/librispeech dev-clean test-clean)
#
# Downloads LibriSpeech subsets (Panayotov et al., 2015; CC BY 4.0; read English, 16 kHz FLAC) from OpenSLR
# resource 12, checks each archive's MD5 against the sums OpenSLR publishes (pinned below, from
# https://www.openslr.org/resources/12/md5sum.txt) and unpacks it to OUT_DIR/LibriSpeech/SUBSET.
# SUBSET: dev-clean (337 MB), dev-other (314 MB), test-clean (346 MB), test-other (328 MB), train-clean-100
# (6.3 GB), train-clean-360 (23 GB), train-other-500 (30 GB). An interrupted download resumes where it stopped
# (from the next mirror if one fails; OPENSLR_MIRROR=https://... is tried first); an archive is unpacked into
# a temp dir, moved into place when complete and then deleted. Needs internet, curl or wget, md5sum (or md5)
# and tar.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib_download.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib_download.sh"
out=${1:-data/librispeech}
shift || true
subsets=("$@")
[ ${#subsets[@]} -gt 0 ] || subsets=(dev-clean test-clean)
dl_openslr_mirrors
sums=(
  "dev-clean 42e2234ba48799c1f50f24a7926300a1"
  "dev-other c8d0bcc9cca99d4f8b62fcc847357931"
  "test-clean 32fa31d27d2e1cad72775fee3f4849a9"
  "test-other fb5a50374b501bb3bac4815ee91d3135"
  "train-clean-100 2a93770f6d5c6c964bc36631d331a522"
  "train-clean-360 c0e676e450a7ff2f54aeade5171606fa"
  "train-other-500 d1a0fd59409feb2c614ce4d30c387708"
)

dl_need_sum md5 "the downloads"
dl_need_fetch "from ${DL_MIRRORS[0]}"
dl_check_names subset "$out" "${sums[@]}" -- "${subsets[@]}"

mkdir -p "$out/LibriSpeech"
for subset in "${subsets[@]}"; do
  dl_openslr_subset LibriSpeech 12 flac "$out" "$subset" "$(dl_lookup "$subset" "${sums[@]}")"
done
echo "LibriSpeech ${subsets[*]} is in $out/LibriSpeech; next:" \
  "bash recipes/asr_dfcnn/run.sh --corpus $out/LibriSpeech --train-set train-clean-100 --valid-set dev-clean" \
  "--subsets test-clean"
