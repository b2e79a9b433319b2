#!/usr/bin/env bash
# promoscope (flex, release build) against the PyTorch peer on this machine's
# CPU, in one run: inference at batch 256, a training step at batch 64, and one
# 110-bp ISM. Writes the run's table into docs/BENCHMARKS.md and its ratios into
# README.md (their cpu-tables blocks: one per x86-64 level, so a run on an
# AVX-512 CPU replaces the last AVX-512 run and keeps the AVX2 one).
#   bash scripts/bench-cpu.sh            # all cores
#   THREADS=2 bash scripts/bench-cpu.sh
# Needs PyTorch in python3 (`pip install torch numpy`: the PyPI build) and the
# team folder's peer (../shared/peer). A benchmark, not a test: CI does not run it.
set -euo pipefail
cd "$(dirname "$0")/.."
threads=${THREADS:-$(nproc)}
python3 -c 'import torch, numpy' || { echo "bench-cpu: needs PyTorch: pip install torch numpy" >&2; exit 1; }
cargo build --release -p promoscope
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# flex runs on rayon's pool; PyTorch on its intra-op threads: the same number.
RAYON_NUM_THREADS=$threads target/release/promoscope bench --backend flex \
  --infer-batch 256 --train-batch 64 --repeats 5 --stages --json "$tmp/promoscope.json"
python3 scripts/peer_cpu_bench.py --threads "$threads" --repeats 5 --out "$tmp/peer.json"
cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
python3 scripts/bench_table.py --promoscope "$tmp/promoscope.json" --peer "$tmp/peer.json" \
  --title "CPU: $cpu, $threads threads, $(date -u +%F)" \
  --notes "Command: \`THREADS=$threads bash scripts/bench-cpu.sh\`. Both in one run, one after the other." \
  --benchmarks docs/BENCHMARKS.md --readme README.md
