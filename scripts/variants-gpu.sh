#!/usr/bin/env bash
# On the GPU machine: which of burn's optional engines pays? The `bench`
# figures (inference at batch 4096, training step at batch 1024, ISM) of the
# default build and of each build variant packed beside it, in one command:
#   NAME=fusion FEATURES=vulkan,fusion bash scripts/pack-gpu.sh
#   NAME=autotune FEATURES=vulkan,autotune bash scripts/pack-gpu.sh
#   bash scripts/pack-gpu.sh        # the default build; keeps the variants
# then, with the device tool, carry [".gpu", ".gl"]:
#   bash scripts/variants-gpu.sh
# The default build runs once, each variant RUNS times (default 2) with
# cubecl's environment (compiled kernels, autotune results) kept in
# $OUT/NAME/cubecl-env, so a variant's second run shows a process that starts
# warm. Each run is capped at CAP_S (150 s), the whole at BUDGET_S (540 s);
# `bench` prints each figure to stderr as soon as it is measured, so a capped
# run still tells what it got through. MODE=f32 leaves out --mixed-precision.
# Writes $OUT/NAME/run-N.txt, $OUT/NAME/autotune.log.gz and $OUT/log.txt.
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
cp /tmp/promoscope /tmp/promoscope-default
variants=(default)
for packed in .gpu/promoscope-*.xz; do
  [[ -e $packed ]] || continue
  name=${packed#.gpu/promoscope-}
  name=${name%.xz}
  xz -dc "$packed" > "/tmp/promoscope-$name" && chmod +x "/tmp/promoscope-$name"
  variants+=("$name")
done
echo "variants: ${variants[*]}"
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

[environment]
path = { directory = "$dir/cubecl-env" }
TOML
  runs=${RUNS:-2}
  [[ $name == default ]] && runs=1
  for run in $(seq "$runs"); do
    left=$((budget - SECONDS))
    ((left < 30)) && { echo "== $name run $run: skipped, $left s left"; continue; }
    cap=${CAP_S:-150}
    ((cap > left)) && cap=$left
    echo "== $name run $run (cap $cap s, at $SECONDS s)"
    start=$SECONDS
    # shellcheck disable=SC2086
    (cd "$dir" && timeout "$cap" "/tmp/promoscope-$name" bench --backend vulkan \
      --infer-batch 4096 --train-batch 1024 --repeats 5 $precision \
      --golden "$repo/.gpu/golden/hsayn_golden.safetensors") > "$dir/run-$run.txt" 2>&1
    echo "== $name run $run: exit $?, $((SECONDS - start)) s"
    grep -E '^(bench:|\| |golden)' "$dir/run-$run.txt"
  done
  [[ -f $dir/autotune.log ]] && gzip -f "$dir/autotune.log"
done
