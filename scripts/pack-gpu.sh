#!/usr/bin/env bash
# Prepares what scripts/bench-gpu.sh needs on the GPU machine (no Rust, no
# network there), in the git-ignored `.gpu/` and `.gl/`:
# - the release binary with SPIR-V shaders (`vulkan`), stripped and
#   xz-compressed;
# - the PyTorch peer, the golden file and the real DREAM sample;
# - the Vulkan loader's Debian packages (in `.gl/`).
# Then, with the device tool: run `bash scripts/bench-gpu.sh` (or
# `bash scripts/profile-gpu.sh`), carry [".gpu", ".gl"].
# A build variant for scripts/variants-gpu.sh goes beside the default binary,
# which it keeps: `NAME=fusion FEATURES=vulkan,fusion` packs
# .gpu/promoscope-fusion.xz. `rm -rf .gpu` drops old variants (each ~14 MB of
# the device tool's 64-MB carry).
set -euo pipefail
cd "$(dirname "$0")/.."
binary=.gpu/promoscope${NAME:+-$NAME}
mkdir -p .gpu && rm -f "$binary" "$binary.xz"
cargo build --release -p promoscope --features "${FEATURES:-vulkan}" --target-dir target/gpu
strip -o "$binary" target/gpu/release/promoscope
xz -3 -T0 "$binary"
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
