#!/usr/bin/env bash
# The page's speed in headless Chromium (tests/browser/bench.mjs): builds the
# page, then times the demo model's load, scoring 1,000 real sequences from
# the team folder's DREAM sample, the ISM of the page's 110-bp example and
# designs from it (greedy and evolutionary) and quick fine-tuning on its first
# 5,000 rows, three times each, on the CPU path (wasm workers). Options go to bench.mjs:
#   bash scripts/bench-page.sh [--backends cpu,webgpu] [--sequences N] [--repeats R] [--workers N] [--tune ROWS] [--out docs/BENCHMARKS.md]
# Needs what the browser test needs (scripts/setup.sh: chromium, trunk,
# wasm-bindgen-cli, playwright-core).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build-page.sh
node tests/browser/bench.mjs dist "${PROMOSCOPE_SHARED:-../shared}/data/dream2022_train_sample.txt" "$@"
