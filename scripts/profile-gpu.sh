#!/usr/bin/env bash
# On the GPU machine (prepare with scripts/pack-gpu.sh; copy the working tree
# there with `.gpu/` and `.gl/`): where the time of each stage goes, kernel by
# kernel, from cubecl's own profiler.
#
# A `cubecl.toml` in the working directory turns on cubecl's profiling logger
# (every kernel timed on the device, one at a time, and a table of kernel times
# written at each sync) and its memory logger (memory pages created, cleanups).
# `bench --stages --repeats 1` syncs after each run of each stage, so each
# stage's forward and forward + backward get a table of their own;
# scripts/profile_table.py turns them into one Markdown table. Compare the
# kernel time with the stage's wall time from an unprofiled `bench --stages`
# (run first, same command): the difference is time outside kernels.
# Writes $OUT/profile.md, $OUT/bench.md, $OUT/cubecl.log.gz.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-profile-out}
mkdir -p "$out"
source scripts/gpu-env.sh
repo=$PWD
bench=(bench --backend "${BACKEND:-vulkan}" --infer-batch "${INFER_BATCH:-1024}" --train-batch "${TRAIN_BATCH:-1024}" --stages "$@")
timeout "${BENCH_CAP_S:-120}" /tmp/promoscope "${bench[@]}" --repeats 3 | tee "$out/bench.md"
dir=$(mktemp -d)
cat > "$dir/cubecl.toml" <<TOML
[profiling.logger]
level = "basic"
file = "$dir/cubecl.log"
append = false

[memory.logger]
level = "basic"
file = "$dir/cubecl.log"
TOML
(cd "$dir" && timeout "${PROFILE_CAP_S:-180}" /tmp/promoscope "${bench[@]}" --repeats 1 > /dev/null)
python3 "$repo/scripts/profile_table.py" "$dir/cubecl.log" | tee "$out/profile.md"
gzip -c "$dir/cubecl.log" > "$out/cubecl.log.gz"
