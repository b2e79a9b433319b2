#!/usr/bin/env bash
# On the GPU machine, in one command (prepare with scripts/pack-gpu.sh, then
# copy the working tree there with the git-ignored `.gpu/` and `.gl/`):
# 1. promoscope (wgpu on Vulkan) and the PyTorch peer (cuDNN, strict fp32 and
#    TF32) time the same three figures: a training step at batch 1024,
#    inference at batch 4096, one 110-bp ISM; promoscope in f32 and in mixed
#    precision, each checked against the golden output, with per-stage
#    times of inference and of the training step's forward + backward;
# 2. f32 and mixed-precision training on the real DREAM sample, same recipe:
#    the validation Pearson of each;
# 3. two epochs of the seed recipe (307,200 simulated sequences, batch 1024),
#    each with a validation of 104,448: the second, warm one (the first
#    compiles every kernel) is the base of the 850-epoch projection;
# 4. host memory of training at the full DREAM scale: 6.7 M simulated lines
#    read, then 20 steps (the target: under 2 GB).
# Training steps print their peak resident memory (scripts/peak_rss.py).
# Writes $OUT/bench-gpu.md (tables for docs/BENCHMARKS.md's GPU rows), the JSON
# files and $OUT/log.txt. Each step has a time cap; the whole stays under
# BUDGET_S (570 s; on an H100, steps 1 and 3 took 200 s).
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-bench-out}
mkdir -p "$out"
exec > >(tee "$out/log.txt") 2>&1
source scripts/gpu-env.sh
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
budget=${BUDGET_S:-570}
# step CAP_S NAME COMMAND...: runs COMMAND for at most CAP_S seconds, and not
# past the budget; skipped when under 30 s of it is left.
step() {
  local cap=$1 name=$2
  shift 2
  local left=$((budget - SECONDS))
  ((left < 30)) && { echo "== $name: skipped, ${left} s left"; return; }
  ((cap > left)) && cap=$left
  echo "== $name (cap ${cap} s, at ${SECONDS} s)"
  local start=$SECONDS
  timeout "$cap" "$@"
  echo "== $name: exit $?, $((SECONDS - start)) s"
}
bench="bench --backend vulkan --infer-batch 4096 --train-batch 1024 --repeats 5 --stages --golden .gpu/golden/hsayn_golden.safetensors"
step 120 "promoscope f32" /tmp/promoscope $bench --json "$out/f32.json"
step 90 "PyTorch peer" python3 .gpu/peer/peer_bench.py --golden .gpu/golden/hsayn_golden.safetensors --out "$out/peer.json"
step 120 "promoscope mixed precision" /tmp/promoscope $bench --mixed-precision --json "$out/mixed.json"

# The faster training of the two decides the precision of the epoch timing.
mixed=$(python3 - "$out" <<'PY'
import json, sys
seq = {}
for name in ("f32", "mixed"):
    try:
        figs = json.load(open(f"{sys.argv[1]}/{name}.json"))["figures"]
        seq[name] = next(f["seq_per_s"] for f in figs if f["key"] == "training")
    except (OSError, StopIteration):
        seq[name] = 0
print("--mixed-precision" if seq["mixed"] > seq["f32"] else "")
PY
)
sample="--data .gpu/data/dream2022_train_sample.txt --backend vulkan --epochs 12 --epoch-size 5369 --batch-size 128 --lr 1e-3 --fine-tune-epochs 4 --fine-tune-lr 3e-4 --val-size 1000 --val-every 2 --swa-start 150 --swa-every 30 --swa-bn-batches 8 --seed 0"
# SKIP_SAMPLE=1 leaves out the real-sample runs (their Pearsons are in docs/BENCHMARKS.md).
if [[ -z ${SKIP_SAMPLE:-} ]]; then
  step 60 "real sample, f32" /tmp/promoscope train $sample --out /tmp/sample-f32
  step 60 "real sample, mixed precision" /tmp/promoscope train $sample --mixed-precision --out /tmp/sample-mixed
fi
/tmp/promoscope simulate --n 411648 --seed 1 --out /tmp/sim.txt
rss="python3 scripts/peak_rss.py"
step 240 "two seed epochs ${mixed:-f32}" $rss /tmp/promoscope train --data /tmp/sim.txt --backend vulkan --epochs 2 --val-every 1 --no-swa $mixed --out /tmp/sim-run
cat /tmp/sim-run/metrics.jsonl 2>/dev/null
step 60 "simulate 6.7 M" /tmp/promoscope simulate --n 6700000 --seed 1 --out /tmp/sim-full.txt
step 120 "6.7 M sequences, 20 steps ${mixed:-f32}" $rss /tmp/promoscope train --data /tmp/sim-full.txt --backend vulkan --epochs 1 --epoch-size 20480 --val-size 1024 --no-swa $mixed --out /tmp/full-run
gpu=$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | head -1)
for run in f32:"f32" mixed:"mixed precision (f16 convolution products)"; do
  name=${run%%:*}
  [[ -s "$out/$name.json" && -s "$out/peer.json" ]] || continue
  python3 scripts/bench_table.py --promoscope "$out/$name.json" --peer "$out/peer.json" \
    --title "GPU: $gpu, promoscope ${run#*:}, $(date -u +%F)" \
    --notes "Command: \`bash scripts/bench-gpu.sh\` on the GPU machine. The peer's ISM batch has 334 rows (4 copies of the reference), promoscope's 331." \
    >> "$out/bench-gpu.md"
done
cat "$out/bench-gpu.md" 2>/dev/null
