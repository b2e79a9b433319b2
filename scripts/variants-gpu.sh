#!/usr/bin/env bash
# On the GPU machine: which of burn's optional engines pays? The `bench`
# figures (inference at batch 4096, training step at batch 1024, ISM) of the
# default build (`vulkan,fusion`) and of each build variant packed beside it,
# in one command:
#   NAME=plain FEATURES=vulkan bash scripts/pack-gpu.sh
#   NAME=autotune FEATURES=vulkan,fusion,autotune bash scripts/pack-gpu.sh
#   bash scripts/pack-gpu.sh        # the default build; keeps the variants
# then, on the GPU machine, with `.gpu/` and `.gl/` copied beside the tree:
#   bash scripts/variants-gpu.sh
# Each build runs RUNS times (default 1; the autotune build 2) with cubecl's
# environment directory in $OUT/NAME/cubecl-env, which keeps autotune results
# and compiled kernels between runs in builds with burn's `persistence` (the
# trainer's `autotune` feature turns it on; before 2026-12-02 it did not, and
# the second run tuned again). So the autotune build's first run tunes
# (capped at TUNE_CAP_S, 280 s) and its second measures tuned kernels without
# the tuning. Each other run is capped at CAP_S (150 s), the whole at
# BUDGET_S (540 s);
# `bench` prints each figure to stderr as soon as it is measured, so a capped
# run still tells what it got through. MODE=f32 leaves out --mixed-precision.
# The PyTorch peer runs first in the same command (PEER=0 leaves it out), so
# each variant's last complete run gets a table with the peer's ratios.
# SEED_EPOCHS=1 then trains two epochs of the seed recipe (as step 3 of
# scripts/bench-gpu.sh: 307,200 simulated sequences at batch 1024, each with
# a validation of 104,448; the second, warm epoch is the base of the
# 850-epoch projection) with the variant whose training step was fastest, in
# its own directory (its cubecl.toml, so autotune's results are reused),
# when at least 120 s of the budget are left: one command can then time
# the variants and project the recipe with the fastest.
# Writes $OUT/NAME/run-N.{txt,json}, $OUT/NAME/autotune.log.gz,
# $OUT/variants.md, $OUT/NAME/seed-run/metrics.jsonl and $OUT/log.txt.
set -uo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
out=$(realpath -m "${OUT:-variants-out}")
mkdir -p "$out"
exec > >(tee "$out/log.txt") 2>&1
source scripts/gpu-env.sh
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
budget=${BUDGET_S:-540}
precision=--mixed-precision
[[ ${MODE:-mixed} == f32 ]] && precision=
# VARIANTS="plain autotune" picks the packed variants and their order (all,
# alphabetically, by default); the default build always runs first.
variants=(default)
if [[ -z ${VARIANTS:-} ]]; then
  VARIANTS=$(for p in /tmp/promoscope-*; do [[ -f $p && -x $p ]] && basename "$p"; done | sed 's/^promoscope-//')
fi
for name in $VARIANTS; do
  [[ $name == default ]] || variants+=("$name")
done
echo "variants: ${variants[*]}"
if [[ ${PEER:-1} != 0 ]]; then
  echo "== PyTorch peer (at $SECONDS s)"
  timeout 90 python3 .gpu/peer/peer_bench.py --golden .gpu/golden/hsayn_golden.safetensors \
    --out "$out/peer.json"
  echo "== PyTorch peer: exit $?, $SECONDS s"
fi
gpu=$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | head -1)
# Sets `binary` and `flags` for the variant NAME.
variant() {
  binary=/tmp/promoscope flags=
  case $1 in
    default) ;;
    *) binary=/tmp/promoscope-$1 ;;
  esac
}
for name in "${variants[@]}"; do
  dir=$out/$name
  mkdir -p "$dir/cubecl-env"
  # cubecl reads cubecl.toml from the working directory.
  cat > "$dir/cubecl.toml" <<TOML
[autotune]
level = "${AUTOTUNE_LEVEL:-minimal}"

[autotune.logger]
level = "full"
file = "$dir/autotune.log"

[compilation]
cache = true

[environment]
path = { directory = "$dir/cubecl-env" }
TOML
  runs=${RUNS:-1}
  [[ $name == autotune ]] && runs=${RUNS:-2}
  for run in $(seq "$runs"); do
    left=$((budget - SECONDS))
    ((left < 30)) && { echo "== $name run $run: skipped, $left s left"; continue; }
    cap=${CAP_S:-150}
    [[ $name == autotune && $run == 1 ]] && cap=${TUNE_CAP_S:-280}
    ((cap > left)) && cap=$left
    echo "== $name run $run (cap $cap s, at $SECONDS s)"
    start=$SECONDS
    variant "$name"
    # shellcheck disable=SC2086
    (cd "$dir" && timeout "$cap" "$binary" bench --backend vulkan \
      --infer-batch 4096 --train-batch 1024 --repeats 5 $precision $flags \
      --golden "$repo/.gpu/golden/hsayn_golden.safetensors" --json "$dir/run-$run.json") \
      > "$dir/run-$run.txt" 2>&1
    echo "== $name run $run: exit $?, $((SECONDS - start)) s"
    grep -E '^(bench:|\| |golden|convolutions|warning)' "$dir/run-$run.txt"
    du -sh "$dir/cubecl-env"
  done
  [[ -f $dir/autotune.log ]] && gzip -f "$dir/autotune.log"
  last=$(ls "$dir"/run-*.json 2>/dev/null | sort | tail -1)
  [[ -n $last && -s $out/peer.json ]] && python3 scripts/bench_table.py \
    --promoscope "$last" --peer "$out/peer.json" \
    --title "GPU: $gpu, promoscope build \`$name\` ${MODE:-mixed}, $(date -u +%F)" \
    --notes "Command: \`bash scripts/variants-gpu.sh\` on the GPU machine; ${last#"$out"/}." \
    >> "$out/variants.md"
done
cat "$out/variants.md" 2>/dev/null
[[ ${SEED_EPOCHS:-0} == 1 ]] || exit 0
best=$(python3 - "$out" "${variants[@]}" <<'PY'
import glob, json, sys
out, names = sys.argv[1], sys.argv[2:]
rates = {}
for name in names:
    for path in glob.glob(f"{out}/{name}/run-*.json"):
        try:
            figures = json.load(open(path))["figures"]
            rate = next(f["seq_per_s"] for f in figures if f["key"] == "training")
        except (OSError, ValueError, KeyError, StopIteration):
            continue
        rates[name] = max(rate, rates.get(name, 0))
print(max(rates, key=rates.get) if rates else "")
PY
)
left=$((budget - SECONDS))
if [[ -z $best ]] || ((left < 120)); then
  echo "== seed epochs: skipped (fastest variant: '${best:-none}', $left s left)"
  exit 0
fi
variant "$best"
echo "== two seed epochs, $best (cap $left s, at $SECONDS s)"
"$binary" simulate --n 411648 --seed 1 --out /tmp/sim.txt
start=$SECONDS
# shellcheck disable=SC2086
(cd "$out/$best" && timeout $((budget - SECONDS)) python3 "$repo/scripts/peak_rss.py" "$binary" train \
  --data /tmp/sim.txt --backend vulkan --epochs 2 --val-every 1 --no-swa $precision $flags \
  --out "$out/$best/seed-run")
echo "== two seed epochs, $best: exit $?, $((SECONDS - start)) s"
cat "$out/$best/seed-run/metrics.jsonl" 2>/dev/null
