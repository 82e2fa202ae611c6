#!/usr/bin/env bash
# The prepared script for a lent GPU: the paper grid within the slice's budget, packed as importable records,
# in device-run's phases (E1+E2 for every seed of SEEDS first, then E4/E5/E3 for every seed, then E6-E11), so
# that a slice cut short leaves whole seeds of the core claims. Run it from the repository root with the CIFAR-10 JPEG copy and CIFAR-10H carried
# in data/device/ (cifar10-jpeg/ with train.tar.gz, test.tar.gz and test_index_to_file.txt, and cifar10h/
# with cifar10h-probs.npy; git-ignored):
#     OUT=$OUT SEEDS="1 2" BUDGET=540 bash scripts/device_check.sh      # on the GPU machine
#     BENCH=1 ...    first the speed levers (python -m kdlib bench --only levers, about 30 s) into bench.json
#     FILL0=1 ...    first the seed-0 runs that need no teacher weights (the E2 no-teacher students)
#     LONG=1 ...     also one flip+crop teacher of 140 epochs (profile paper-long), in a second process
#                    started when the first seed's teachers are done (students leave the GPU idle)
#     KDLIB_ENGINE=plain ...   train without CUDA graphs (the default on a GPU is fit's 'graphs' engine)
#     GPUTESTS=1 ...  first the GPU-only tests (CUDA graphs against the plain step; ~20 s) when pytest is there
#     SCALE=tiny OUT=/tmp/x bash scripts/device_check.sh              # the same code at smoke size, on a CPU
# Then, here: python -m kdlib import $OUT/records.tar.gz (and $OUT/long.tar.gz); git add results; git commit
# $OUT receives at most 6 files (the device tool returns 8 at most: a 9th is silently left behind):
# records.tar.gz (every finished run of the profile, all steps), long.tar.gz (LONG=1), bench.json (BENCH=1),
# summary.json (the main step's), log.txt (device, steps and every step's log) and console.txt.
# Steps work in $WORK (default /tmp/kd-device-work) and are gathered into $OUT at the end, also on failure.
set -uo pipefail
cd "$(dirname "$0")/.."
T0=$(date +%s)
OUT=${OUT:-/tmp/kd-device-out}
SCALE=${SCALE:-full}
PY=${PY:-python3}
FINAL=$OUT
OUT=${WORK:-/tmp/kd-device-work}
rm -rf "$OUT"; mkdir -p "$OUT" "$FINAL"
gather() {  # every step's output into at most 6 files in $FINAL
  [ -f "$OUT/main/records.tar.gz" ] && cp "$OUT/main/records.tar.gz" "$FINAL/records.tar.gz" ||
    { [ -f "$OUT/fill0/records.tar.gz" ] && cp "$OUT/fill0/records.tar.gz" "$FINAL/records.tar.gz"; }
  [ -f "$OUT/long/records.tar.gz" ] && cp "$OUT/long/records.tar.gz" "$FINAL/long.tar.gz"
  [ -f "$OUT/fill0/bench.json" ] && cp "$OUT/fill0/bench.json" "$FINAL/bench.json"
  [ -f "$OUT/main/summary.json" ] && cp "$OUT/main/summary.json" "$FINAL/summary.json"
  for f in device.txt steps.txt gputests.txt fill0/log.txt main/log.txt long/log.txt; do
    [ -f "$OUT/$f" ] && { echo "== $f"; cat "$OUT/$f"; }
  done > "$FINAL/log.txt"
  [ "$(find "$FINAL" -type f | wc -l)" -le 8 ] || echo "WARNING: more than 8 files in $FINAL: the device tool returns 8"
}
trap gather EXIT
export KDLIB_DATA=${KDLIB_DATA:-$PWD/data/device}
export KDLIB_RUNS=${KDLIB_RUNS:-$PWD/data/device-runs}
export KDLIB_CACHE=${KDLIB_CACHE:-$PWD/data/device-cache}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
# torch is on the GPU machine; install only kdlib's small pure-Python needs if missing
$PY -c "import yaml, tqdm, scipy, PIL" 2>/dev/null || $PY -m pip install -q pyyaml tqdm scipy pillow
{ nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv || true; nproc;
  $PY -c "import torch, torchvision; print(torch.__version__, torchvision.__version__, torch.cuda.is_available())"; } \
  > "$OUT/device.txt" 2>&1

if [ "$SCALE" = tiny ]; then
  DEVICE=cpu; PROFILE=${PROFILE:-smoke}; SEEDS=${SEEDS:-0}; BUDGET=${BUDGET:-120}; LONG_PROFILE=smoke
else
  DEVICE=cuda; PROFILE=${PROFILE:-paper}; SEEDS=${SEEDS:-1 2}; BUDGET=${BUDGET:-540}; LONG_PROFILE=paper-long
fi
left() { echo $(( BUDGET - ($(date +%s) - T0) )); }
stamp() { echo "[$(( $(date +%s) - T0 ))s] $*" | tee -a "$OUT/steps.txt"; }

# 0. optional: the tests that only a GPU can run (their outcome goes to log.txt)
if [ -n "${GPUTESTS:-}" ]; then
  if $PY -c "import pytest" 2>/dev/null; then
    stamp "gpu tests"
    $PY -m pytest -q -p no:cacheprovider tests/test_engines.py tests/test_train.py tests/test_fast.py -k "cuda or gpu" \
        > "$OUT/gputests.txt" 2>&1
    stamp "gpu tests: $(tail -n 1 "$OUT/gputests.txt")"
  else
    stamp "gpu tests skipped: no pytest on this machine"
  fi
fi

# 1. optional: the levers benchmark and the seed-0 runs that need no teacher weights
if [ -n "${BENCH:-}${FILL0:-}" ]; then
  EXTRA=(); [ -n "${BENCH:-}" ] && EXTRA+=(--bench)
  FILL_SEED=0; [ -z "${FILL0:-}" ] && FILL_SEED=none
  if [ "$FILL_SEED" = 0 ]; then
    stamp "fill0 (bench: ${BENCH:-no})"
    $PY -m kdlib device-run --profile "$PROFILE" --seeds 0 --only E2 --budget $(( $(left) < 200 ? $(left) : 200 )) \
        --out "$OUT/fill0" --device "$DEVICE" "${EXTRA[@]}" 2>&1 | tail -n 30
  else
    stamp "bench"
    $PY -m kdlib bench --device "$DEVICE" --only levers --steps 20 --out "$OUT/fill0/bench.json" 2>&1 | tail -n 30
  fi
fi

# 2. optional: the long teacher, in the background once the first seed's teachers are done
LONG_PID=
if [ -n "${LONG:-}" ]; then
  (
    FIRST=${SEEDS%% *}
    until grep -q "flipcrop-cutmix seed $FIRST:" "$OUT/main/log.txt" 2>/dev/null; do
      sleep 2; [ "$(left)" -lt 60 ] && exit 0
    done
    stamp "long teacher starts"
    mkdir -p "$OUT/long"
    KDLIB_RUNS=$KDLIB_RUNS-long $PY -m kdlib grid --profile "$LONG_PROFILE" --task teacher-main-resnet18-flipcrop \
        --seeds 0 --device "$DEVICE" --no-progress --ignore-results > "$OUT/long/log.txt" 2>&1
    KDLIB_RUNS=$KDLIB_RUNS-long $PY -m kdlib export --profile "$LONG_PROFILE" --archive "$OUT/long/records.tar.gz" \
        --to "$PWD/data/device-long-results" >> "$OUT/long/log.txt" 2>&1
    stamp "long teacher done: $(tail -n 1 "$OUT/long/log.txt")"
  ) &
  LONG_PID=$!
fi

# 3. the grid for SEEDS with what is left of the budget: E1+E2 for every seed, then E4/E5/E3, then E6-E11
stamp "main: seeds $SEEDS, $(left) s left"
# shellcheck disable=SC2086
$PY -m kdlib device-run --profile "$PROFILE" --seeds $SEEDS --budget "$(( $(left) - 5 ))" --out "$OUT/main" \
    --device "$DEVICE" 2>&1 | tail -n 40
if [ -n "$LONG_PID" ]; then  # wait for the long teacher while the budget lasts, then stop it
  while kill -0 "$LONG_PID" 2>/dev/null && [ "$(left)" -gt 3 ]; do sleep 1; done
  # its own processes only (the subshell's children, then the subshell): a `pkill -f "profile …"` here once
  # stopped every other job of that profile on the machine, a test's book build among them
  if kill -0 "$LONG_PID" 2>/dev/null; then
    pkill -TERM -P "$LONG_PID" 2>/dev/null || true
    kill -- "$LONG_PID" 2>/dev/null && stamp "long teacher stopped at the budget"
  fi
fi
stamp "end"
