#!/usr/bin/env bash
# On the GPU machine: does burn's autotune pay once its tuning is cached?
# Prepare with `FEATURES=vulkan,autotune bash scripts/pack-gpu.sh`; run with
# the device tool, carry [".gpu", ".gl"]. Runs the mixed-precision `bench` of
# scripts/bench-gpu.sh RUNS times (default 2), each capped at CAP_S, with
# cubecl's environment (autotune results, compiled kernels) kept in
# $OUT/cubecl-env: the first run tunes, later runs read the cache. To start
# from an earlier call's tuning, copy its cubecl-env to .gpu/cubecl-env here
# before the call. On an H100 (2026-11-27, level "minimal") the first run made
# 46 tunings in 185 s, some taking 10-22 s, and printed no figure.
# Writes $OUT/run-N.txt (bench tables), $OUT/autotune.log.gz, $OUT/cubecl-env/.
set -uo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
out=$(realpath "${OUT:-autotune-out}")
mkdir -p "$out"
source scripts/gpu-env.sh
[[ -d .gpu/cubecl-env ]] && cp -r .gpu/cubecl-env "$out/"
mkdir -p "$out/cubecl-env"
dir=$(mktemp -d)
cat > "$dir/cubecl.toml" <<TOML
[autotune]
level = "${AUTOTUNE_LEVEL:-minimal}"

[autotune.logger]
level = "full"
file = "$out/autotune.log"

[environment]
path = { directory = "$out/cubecl-env" }
TOML
cd "$dir"
for run in $(seq "${RUNS:-2}"); do
  start=$SECONDS
  timeout "${CAP_S:-150}" /tmp/promoscope bench --backend vulkan --infer-batch 4096 \
    --train-batch 1024 --repeats 5 --mixed-precision \
    --golden "$repo/.gpu/golden/hsayn_golden.safetensors" | tee "$out/run-$run.txt"
  echo "== run $run: exit ${PIPESTATUS[0]}, $((SECONDS - start)) s, $(grep -c '^Fastest result' "$out/autotune.log") tunings so far"
done
gzip -f "$out/autotune.log"
