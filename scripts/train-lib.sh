# Sourced by the training scripts (train-small-data.sh, train-ensemble.sh):
# the binary ($PROMOSCOPE, or the release build, built here) and `train`,
# which starts a run, resumes it with `train --resume` when its folder has a
# checkpoint, and leaves a finished one as it is.
promoscope=${PROMOSCOPE:-target/release/promoscope}
[[ -n ${PROMOSCOPE:-} ]] || cargo build --release -p promoscope

train() { # OUT_DIR TRAIN_OPTIONS...
  local out=$1; shift
  if [[ -f $out/last.safetensors ]]; then return; fi
  if [[ -f $out/checkpoint/state.json ]]; then
    "$promoscope" train --resume "$out"
  else
    "$promoscope" train --backend flex --out "$out" "$@"
  fi
}
