#!/usr/bin/env bash
# The ensemble recipe, end to end, as docs/TRAINING.md ("Ensembles and their
# spread") reports it: the teacher set of train-small-data.sh; pre-training on
# the 20,340 Vaishnav et al. 2022 measurements (both media, ../shared/data)
# with teacher rows mixed in; then the small-data recipe on the DREAM split's
# training part once per seed; the members joined into ensembles and scored
# on the held-out part with their spread's calibration. Every step resumes
# where it stopped.
#
#   [OUT=runs/ensemble] [SEEDS="0 1 2 3"] [TWIN_SEEDS="0 1 2"] [THREADS=2] [PROMOSCOPE=binary] bash scripts/train-ensemble.sh
#
# Figures: $OUT/*.json, and the table: python3 scripts/ensemble_table.py $OUT
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=../shared/data
OUT=${OUT:-runs/ensemble}
SEEDS=${SEEDS:-0 1 2 3}
export RAYON_NUM_THREADS=${THREADS:-2}
mkdir -p "$OUT"
source scripts/train-lib.sh
dream=$DATA/dream2022_train_sample.txt
evaluate() { # OUT.json WEIGHTS DATA [options]
  local json=$1 weights=$2 data=$3; shift 3
  [[ -f $json ]] || "$promoscope" evaluate --weights "$weights" --data "$data" --backend flex --json "$@" > "$json"
}

[[ -f $OUT/teacher.txt ]] || python3 scripts/baseline_kmer.py --data "$dream" --holdout 15 \
  --teacher 100000 --teacher-out "$OUT/teacher.txt" --out "$OUT/baseline.json"
for medium in complex defined; do
  [[ -f $OUT/ridge-$medium.json ]] || python3 scripts/baseline_kmer.py --holdout 5 \
    --data "$DATA/vaishnav2022_${medium}_sswm_drift.txt" --out "$OUT/ridge-$medium.json"
done

# Pre-training: both media in one file (labels on their own scales, one
# output), teacher rows mixed in, three passes; validated on 5% by CRC.
[[ -f $OUT/vaishnav.txt ]] || cat "$DATA"/vaishnav2022_{complex,defined}_sswm_drift.txt > "$OUT/vaishnav.txt"
train "$OUT/pretrain" --data "$OUT/vaishnav.txt" --recipe small-data --holdout 5 \
  --mix-data "$OUT/teacher.txt" --epochs 3 --lr 1e-3 --fine-tune-epochs 0 --swa-start 453 --swa-every 30
for medium in complex defined; do
  evaluate "$OUT/pretrain-$medium.json" "$OUT/pretrain/swa.safetensors" \
    "$DATA/vaishnav2022_${medium}_sswm_drift.txt" --holdout 5
done
evaluate "$OUT/pretrain-dream.json" "$OUT/pretrain/swa.safetensors" "$dream" --holdout 15

members=()
for seed in $SEEDS; do
  train "$OUT/seed$seed" --data "$dream" --recipe small-data --holdout 15 \
    --init "$OUT/pretrain/swa.safetensors" --mix-data "$OUT/teacher.txt" --seed "$seed"
  members+=("$OUT/seed$seed/swa.safetensors")
done

# The PyTorch twin, the same recipe from the same pre-trained weights.
# shellcheck disable=SC2086
[[ -f $OUT/twin.json ]] || python3 scripts/peer_train.py --data "$dream" --holdout 15 \
  --recipe small-data --epochs 4 --lr 5e-4 --init "$OUT/pretrain/swa.safetensors" \
  --mix-data "$OUT/teacher.txt" --seeds ${TWIN_SEEDS:-0 1 2} --threads "$RAYON_NUM_THREADS" --out "$OUT/twin.json"

# Ensembles: every pair of seeds, and all of them; each scored on the
# held-out part, with every sequence's mean and spread for the table's
# split-conformal check.
join() { # OUT.safetensors MEMBER...
  local out=$1; shift
  [[ -f $out ]] || "$promoscope" export $(printf -- '--weights %s ' "$@") --out "$out"
}
n=${#members[@]}
for ((i = 0; i < n; i++)); do
  for ((j = i + 1; j < n; j++)); do
    join "$OUT/pair$i$j.safetensors" "${members[i]}" "${members[j]}"
    evaluate "$OUT/pair$i$j.json" "$OUT/pair$i$j.safetensors" "$dream" --holdout 15
  done
done
join "$OUT/all.safetensors" "${members[@]}"
evaluate "$OUT/all.json" "$OUT/all.safetensors" "$dream" --holdout 15
for weights in "$OUT"/pair*.safetensors "$OUT/all.safetensors"; do
  csv=${weights%.safetensors}.predictions.csv
  [[ -f $csv ]] || "$promoscope" predict --weights "$weights" --backend flex "$dream" --skip-bad --out "$csv"
done
# The page's copy: the first pair in 8 bits, scored the same way.
"$promoscope" export --weights "$OUT/pair01.safetensors" --int8 --out "$OUT/pair01-int8.safetensors"
evaluate "$OUT/pair01-int8.json" "$OUT/pair01-int8.safetensors" "$dream" --holdout 15

# Members from independent pre-training runs: pre-training with seed k, then
# the small-data recipe with seed k (ind1, ind2), paired; and the three
# pre-trained networks (seeds 0, 1, 2) as one ensemble on the Vaishnav scale.
for k in 1 2; do
  train "$OUT/pretrain$k" --data "$OUT/vaishnav.txt" --recipe small-data --holdout 5 \
    --mix-data "$OUT/teacher.txt" --epochs 3 --lr 1e-3 --fine-tune-epochs 0 --swa-start 453 --swa-every 30 --seed "$k"
  train "$OUT/ind$k" --data "$dream" --recipe small-data --holdout 15 \
    --init "$OUT/pretrain$k/swa.safetensors" --mix-data "$OUT/teacher.txt" --seed "$k"
done
join "$OUT/pairi1i2.safetensors" "$OUT/ind1/swa.safetensors" "$OUT/ind2/swa.safetensors"
evaluate "$OUT/pairi1i2.json" "$OUT/pairi1i2.safetensors" "$dream" --holdout 15
join "$OUT/pretrain-trio.safetensors" "$OUT"/pretrain{,1,2}/swa.safetensors

# The spread on sequences unlike DREAM's random ones: each Vaishnav medium's
# --holdout 5 part (never trained on), every row predicted; the table keeps
# the held-out rows.
for weights in pair01 pairi1i2 pretrain-trio; do
  for medium in complex defined; do
    csv=$OUT/vaishnav-$medium-$weights.predictions.csv
    [[ -f $csv ]] || "$promoscope" predict --weights "$OUT/$weights.safetensors" --backend flex \
      "$DATA/vaishnav2022_${medium}_sswm_drift.txt" --out "$csv"
  done
done
python3 scripts/ensemble_table.py "$OUT"
