#!/usr/bin/env bash
# Builds the web page into dist/ with trunk, offline, with the locally installed
# wasm-bindgen-cli (setup.sh installs it). wasm-opt is off (see docs/BENCHMARKS.md).
# The wasm build has its own target folder, so that it never waits for (or
# invalidates) the native one.
set -euo pipefail
cd "$(dirname "$0")/.."
# The wasm module is linked without its name section (function names, 5.8 of
# 30 MB): a profile of the page wants them back, scripts/profile-page.sh
# builds with STRIP=none in a target folder of its own.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target/web}" TRUNK_SKIP_VERSION_CHECK=true
export CARGO_PROFILE_RELEASE_STRIP="${STRIP:-symbols}"
trunk build --release --offline --filehash false "$@"
