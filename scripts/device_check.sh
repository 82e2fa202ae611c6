#!/usr/bin/env bash
# The prepared script for a lent GPU: whole seeds of the paper grid within the slice's budget, packed as
# importable records. Run it from the repository root with the CIFAR-10 JPEG copy and CIFAR-10H carried
# in data/device/ (copy ../shared/datasets/{cifar10-jpeg,cifar10h} there; git-ignored):
#     OUT=$OUT SEEDS="1 2" BUDGET=540 bash scripts/device_check.sh      # on the GPU machine
#     BENCH=1 ...                                                      # also the benchmark first (about 2 min)
#     SCALE=tiny OUT=/tmp/x bash scripts/device_check.sh              # the same code at smoke size, on a CPU
# Then, here: python -m kdlib import $OUT/records.tar.gz && git add results && git commit
# $OUT receives records.tar.gz, log.txt, summary.json, device.txt (and bench.json with BENCH=1).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/kd-device-out}
SCALE=${SCALE:-full}
PY=${PY:-python3}
mkdir -p "$OUT"
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
  DEVICE=cpu; PROFILE=${PROFILE:-smoke}; SEEDS=${SEEDS:-0}; BUDGET=${BUDGET:-120}
else
  DEVICE=cuda; PROFILE=${PROFILE:-paper}; SEEDS=${SEEDS:-1 2}; BUDGET=${BUDGET:-540}
fi
EXTRA=()
[ -n "${BENCH:-}" ] && EXTRA+=(--bench)
# shellcheck disable=SC2086
$PY -m kdlib device-run --profile "$PROFILE" --seeds $SEEDS --budget "$BUDGET" --out "$OUT" --device "$DEVICE" \
    "${EXTRA[@]}" 2>&1 | tail -n 40
