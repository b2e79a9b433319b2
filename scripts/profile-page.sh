#!/usr/bin/env bash
# Where the page's ISM spends its time inside the wasm workers
# (tests/browser/profile-ism.mjs): builds the page, then, in headless Chromium
# on the CPU path, runs a warm-up ISM of the page's example and profiles
# --repeats more with V8's sampling profiler (Chrome tracing), and prints the
# top functions by self time per worker thread, over all workers, and by
# category (matmul, conv, memory, allocator, JS, ...). Options go to
# profile-ism.mjs:
#   bash scripts/profile-page.sh [--repeats 2] [--top 30] [--out FILE.json] [--trace TRACE.json]
# (--trace keeps the raw Chrome trace, for DevTools' Performance panel; a kept
# trace is read again, without a browser, by
#   node tests/browser/profile-ism.mjs --analyse TRACE.json [--top N] [--out FILE.json])
# Needs what the browser test needs (scripts/setup.sh: chromium, trunk,
# wasm-bindgen-cli, playwright-core).
# The page is built with the wasm module's function names (STRIP=none; the
# served build strips them), in target/web-names and dist-names/.
set -euo pipefail
cd "$(dirname "$0")/.."
STRIP=none CARGO_TARGET_DIR="$PWD/target/web-names" bash scripts/build-page.sh --dist dist-names
node tests/browser/profile-ism.mjs dist-names "$@"
