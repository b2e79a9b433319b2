#!/usr/bin/env bash
# promoscope (flex, release build) against the PyTorch peer on this machine's
# CPU, in one run: inference at batch 256, a training step at batch 64, and one
# 110-bp ISM, in ROUNDS rounds (default 3) of promoscope then PyTorch; the
# table gives medians, each round's ratio beside them (bench_table.py). Writes the run's table into docs/BENCHMARKS.md and its ratios into
# README.md (their cpu-tables blocks: one per x86-64 level, so a run on an
# AVX-512 CPU replaces the last AVX-512 run and keeps the AVX2 one).
#   bash scripts/bench-cpu.sh            # all cores
#   THREADS=2 [ROUNDS=3] bash scripts/bench-cpu.sh
# Needs PyTorch in python3 (`pip install torch numpy`: the PyPI build) and the
# team folder's peer (../shared/peer). A benchmark, not a test: CI does not run it.
set -euo pipefail
cd "$(dirname "$0")/.."
threads=${THREADS:-$(nproc)}
rounds=${ROUNDS:-3}
python3 -c 'import torch, numpy' || { echo "bench-cpu: needs PyTorch: pip install torch numpy" >&2; exit 1; }
cargo build --release -p promoscope
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# flex runs on rayon's pool; PyTorch on its intra-op threads: the same number.
# The stages are timed in the first round only.
ours=() peer=()
for ((round = 1; round <= rounds; round++)); do
  stages=(); ((round == 1)) && stages=(--stages)
  RAYON_NUM_THREADS=$threads target/release/promoscope bench --backend flex \
    --infer-batch 256 --train-batch 64 --repeats 5 "${stages[@]}" --json "$tmp/promoscope-$round.json"
  python3 scripts/peer_cpu_bench.py --threads "$threads" --repeats 5 --out "$tmp/peer-$round.json"
  ours+=("$tmp/promoscope-$round.json") peer+=("$tmp/peer-$round.json")
done
cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
python3 scripts/bench_table.py --promoscope "${ours[@]}" --peer "${peer[@]}" \
  --title "CPU: $cpu, $threads threads, $(date -u +%F)" \
  --notes "Command: \`THREADS=$threads ROUNDS=$rounds bash scripts/bench-cpu.sh\`: $rounds rounds of promoscope then PyTorch; medians, and each round's ratio." \
  --benchmarks docs/BENCHMARKS.md --readme README.md
