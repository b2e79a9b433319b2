#!/usr/bin/env bash
# On the GPU machine, in one command: promoscope's release binary (wgpu on
# Vulkan) and the PyTorch peer (cuDNN, strict fp32 and TF32) time the same
# three figures: a training step at batch 1024, inference at batch 4096, one
# 110-bp ISM. Writes the table with ratios to $OUT/bench-gpu.md (append it to
# docs/BENCHMARKS.md) and both JSON files beside it.
# Prepare with scripts/pack-gpu.sh; run with the device tool, carry [".gpu", ".gl"].
set -euo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-bench-out}
mkdir -p "$out"
if ! ldconfig -p | grep -q libvulkan; then
  for f in .gl/*.deb; do dpkg -x "$f" /; done
  ldconfig
fi
export VK_DRIVER_FILES=${VK_DRIVER_FILES:-/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json}
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}
xz -dc .gpu/promoscope.xz > /tmp/promoscope && chmod +x /tmp/promoscope
/tmp/promoscope bench --backend vulkan --infer-batch 4096 --train-batch 1024 --repeats 10 --stages \
  --json "$out/promoscope.json"
python3 .gpu/peer/peer_bench.py --golden .gpu/golden/hsayn_golden.safetensors --out "$out/peer.json"
gpu=$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | head -1)
python3 scripts/bench_table.py --promoscope "$out/promoscope.json" --peer "$out/peer.json" \
  --title "GPU: $gpu, $(date -u +%F)" \
  --notes "Command: \`bash scripts/bench-gpu.sh\` on the device machine. The peer's ISM batch has 334 rows (4 copies of the reference), promoscope's 331." \
  > "$out/bench-gpu.md"
cat "$out/bench-gpu.md"
