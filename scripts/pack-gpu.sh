#!/usr/bin/env bash
# Prepares what scripts/bench-gpu.sh needs on the GPU machine (no Rust, no
# network there), in the git-ignored `.gpu/` and `.gl/`:
# - the release binary with SPIR-V shaders and burn's fusion (`vulkan,fusion`),
#   stripped, in `.gpu/promoscope.tar.xz`;
# - the PyTorch peer, the golden file and the real DREAM sample;
# - the Vulkan loader's Debian packages (in `.gl/`).
# Then copy the working tree with `.gpu/` and `.gl/` to the GPU machine and
# run `bash scripts/bench-gpu.sh` (or `bash scripts/profile-gpu.sh`) there.
# A build variant for scripts/variants-gpu.sh goes beside the default binary,
# which it keeps: `NAME=plain FEATURES=vulkan` adds promoscope-plain. All the
# binaries kept in target/gpu/packed go into one xz stream with a 256-MiB
# dictionary, which finds what they share (three binaries: 24 MB, against 35
# MB compressed one by one; the copy to the GPU machine, tracked tree
# included, has to stay under 64 MiB);
# `rm -rf target/gpu/packed` drops old variants. Compression takes ~70 s a binary.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .gpu target/gpu/packed
cargo build --release -p promoscope --features "${FEATURES:-vulkan,fusion}" --target-dir target/gpu
strip -o "target/gpu/packed/promoscope${NAME:+-$NAME}" target/gpu/release/promoscope
rm -f .gpu/promoscope*.xz
# Names, not `.`: extracting `./` into /tmp would reset its permissions.
(cd target/gpu/packed && tar -cf - promoscope*) | xz --lzma2=preset=9e,dict=256MiB > .gpu/promoscope.tar.xz.tmp
mv .gpu/promoscope.tar.xz.tmp .gpu/promoscope.tar.xz
rm -rf .gpu/peer .gpu/golden .gpu/data
cp -r ../shared/peer .gpu/peer
mkdir -p .gpu/golden .gpu/data
cp ../shared/golden/hsayn_golden.safetensors .gpu/golden/
cp ../shared/data/dream2022_train_sample.txt .gpu/data/
if ! ls .gl/*.deb >/dev/null 2>&1; then
  mkdir -p .gl /tmp/amd64/partial
  o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
  # shellcheck disable=SC2086
  apt-get $o update
  # shellcheck disable=SC2086
  (cd .gl && apt-get $o download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
fi
du -sh .gpu .gl
