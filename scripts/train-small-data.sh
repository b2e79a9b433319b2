#!/usr/bin/env bash
# The small-data recipe on the DREAM sample, end to end, as docs/TRAINING.md
# reports it: the k-mer ridge fitted on the `--holdout 15` training part labels
# 100,000 random sequences in the DREAM flanks (the teacher set); the network
# is pre-trained on those, then trained on the real training part once per
# seed with teacher rows mixed into every pass; the PyTorch twin is trained
# from the same pre-trained weights with the same recipe, and from scratch.
# Every step resumes where it stopped.
#
#   [DATA=../shared/data/dream2022_train_sample.txt] [OUT=runs/small-data] \
#   [SEEDS="0 1 2"] [THREADS=2] [PROMOSCOPE=binary] bash scripts/train-small-data.sh
#
# Figures: $OUT/baseline.json, $OUT/seed*/metrics.jsonl, $OUT/twin*.json.
# Needs the Python packages of baseline_kmer.py and peer_train.py.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data/dream2022_train_sample.txt}
OUT=${OUT:-runs/small-data}
SEEDS=${SEEDS:-0 1 2}
export RAYON_NUM_THREADS=${THREADS:-2}
mkdir -p "$OUT"
source scripts/train-lib.sh

[[ -f $OUT/teacher.txt ]] || python3 scripts/baseline_kmer.py --data "$DATA" --holdout 15 \
  --teacher 100000 --teacher-out "$OUT/teacher.txt" --out "$OUT/baseline.json"

# Pre-training: epochs of 10,000 teacher sequences (checkpoints every few
# minutes on a CPU); validated on 5% of the teacher set.
train "$OUT/pretrain" --data "$OUT/teacher.txt" --recipe small-data --holdout 5 \
  --epochs 8 --epoch-size 10000 --lr 1e-3 --fine-tune-epochs 0 --swa-start 600 --swa-every 30

for seed in $SEEDS; do
  train "$OUT/seed$seed" --data "$DATA" --recipe small-data --holdout 15 \
    --init "$OUT/pretrain/swa.safetensors" --mix-data "$OUT/teacher.txt" --seed "$seed"
done

# shellcheck disable=SC2086
[[ -f $OUT/twin.json ]] || python3 scripts/peer_train.py --data "$DATA" --holdout 15 \
  --recipe small-data --epochs 4 --lr 5e-4 --init "$OUT/pretrain/swa.safetensors" \
  --mix-data "$OUT/teacher.txt" --seeds $SEEDS --threads "$RAYON_NUM_THREADS" --out "$OUT/twin.json"
# shellcheck disable=SC2086
[[ -n ${SKIP_SCRATCH:-} || -f $OUT/twin-scratch.json ]] || python3 scripts/peer_train.py --data "$DATA" --holdout 15 \
  --recipe small-data --epochs 4 --lr 5e-4 --mix-data "$OUT/teacher.txt" \
  --seeds $SEEDS --threads "$RAYON_NUM_THREADS" --out "$OUT/twin-scratch.json"

[[ -f $OUT/pretrain.json ]] || "$promoscope" evaluate --weights "$OUT/pretrain/swa.safetensors" \
  --data "$DATA" --backend flex --holdout 15 --json > "$OUT/pretrain.json"
python3 scripts/small_data_table.py "$OUT"
