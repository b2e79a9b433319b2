#!/usr/bin/env bash
# Installs what promoscope needs on a fresh Debian bookworm machine (as root):
# Mesa lavapipe 25.x (CPU Vulkan, so the wgpu tests run without a GPU), rustfmt,
# clippy, the wasm32 target, NumPy + safetensors for the Python interop test, and
# the web page's tools (Chromium, wasm-bindgen-cli, trunk, playwright-core).
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/install-system.sh
rustup component add rustfmt clippy >/dev/null
rustup target add wasm32-unknown-unknown >/dev/null
python3 -m pip install -q --disable-pip-version-check -r scripts/requirements-test.txt
bash .ci/install-web.sh
