#!/usr/bin/env bash
# Does mixed-precision training validate as well as f32? For each seed in
# SEEDS (default "1 2 3"), trains f32 and then --mixed-precision on the real
# DREAM sample (its first 5,369 sequences train, its last 1,000 validate), the
# recipe of docs/BENCHMARKS.md ("Mixed precision's accuracy"), and evaluates
# the last and the weight-averaged model of each in f32 on those 1,000.
#   SEEDS="4 5 6" BACKEND=flex CONFIG=docs/configs/small.json bash scripts/mixed-accuracy.sh
# CONFIG= (empty) trains the full model. Finished runs in $OUT are reused. Writes $OUT (default
# mixed-accuracy-out)/table.md and one run directory per seed and precision.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${PROMOSCOPE:-target/release/promoscope}
data=${DATA:-../shared/data/dream2022_train_sample.txt}
out=${OUT:-mixed-accuracy-out}
backend=${BACKEND:-flex}
config=${CONFIG-docs/configs/small.json}
mkdir -p "$out"
tail -n 1000 "$data" > "$out/val1000.txt"
pearson() { # WEIGHTS: the f32 validation Pearson of those weights
  "$bin" evaluate --weights "$1" --data "$out/val1000.txt" --backend "$backend" --json |
    python3 -c 'import json, sys; print("%.3f" % json.load(sys.stdin)["overall"]["pearson"])'
}
table=$out/table.md
echo "| seed | f32: last / averaged Pearson | mixed: last / averaged Pearson | f32 wall s | mixed wall s |" > "$table"
echo "|---:|---:|---:|---:|---:|" >> "$table"
for seed in ${SEEDS:-1 2 3}; do
  row="| $seed"
  walls=""
  for precision in f32 mixed; do
    run=$out/seed$seed-$precision
    start=$SECONDS
    # A finished run (its log ends with the best epoch) is reused.
    if grep -q '^best:' "$run.log" 2>/dev/null; then
      walls+=" | (earlier)"
    else
      "$bin" train --data "$data" ${config:+--config "$config"} --backend "$backend" \
        --epochs 8 --epoch-size 4096 --batch-size 128 --lr 1e-3 --fine-tune-epochs 2 --fine-tune-lr 3e-4 \
        --val-size 1000 --val-every 1 --swa-start 128 --swa-every 16 --swa-bn-batches 8 --seed "$seed" \
        $([[ $precision == mixed ]] && echo --mixed-precision) --out "$run" > "$run.log" 2>&1
      walls+=" | $((SECONDS - start))"
    fi
    row+=" | $(pearson "$run/last.safetensors") / $(pearson "$run/swa.safetensors")"
  done
  echo "$row$walls |" | tee -a "$table"
done
cat "$table"
