#!/usr/bin/env bash
# The prepared GPU check (issue "Performance"): benchmark + a timed, scaled `paper` grid.
# Run on a lent GPU from the repository root, with the CIFAR-10 JPEG copy and CIFAR-10H carried
# in data/device/ (copy ../shared/datasets/{cifar10-jpeg,cifar10h} there; git-ignored):
#     OUT=/some/dir bash scripts/device_check.sh            # full check, figures under $OUT
#     SCALE=tiny OUT=/tmp/x bash scripts/device_check.sh    # the same code at tiny sizes, on a CPU
# Everything it measures is written under $OUT (bench JSON/text, grid timings, metrics).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/kd-device-out}
SCALE=${SCALE:-full}
PY=${PY:-python3}
mkdir -p "$OUT"
export KDLIB_DATA=${KDLIB_DATA:-$PWD/data/device}
export KDLIB_RUNS="$OUT/runs"
export KDLIB_CACHE="$OUT/cache"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
# torch is on the GPU machine; install only kdlib's small pure-Python needs if missing
$PY -c "import yaml, tqdm, scipy, PIL" 2>/dev/null || $PY -m pip install -q pyyaml tqdm scipy pillow
{ nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv || true; $PY -c "import torch; print(torch.__version__, torch.cuda.is_available())"; } > "$OUT/device.txt" 2>&1

if [ "$SCALE" = tiny ]; then
  DEVICE=cpu; PROFILE=smoke; BENCH_ARGS=(--subset 20 --steps 1 --batch-size 64)
else
  DEVICE=cuda; PROFILE=paper; BENCH_ARGS=(--steps 20 --batch-size 512)
fi

echo "== benchmark ($DEVICE)"
$PY -m kdlib bench --device "$DEVICE" --root "$KDLIB_DATA/cifar10-jpeg" "${BENCH_ARGS[@]}" \
    --out "$OUT/bench.json" 2>&1 | tee "$OUT/bench.txt"

echo "== timed grid: profile $PROFILE, E1 (teachers) then E2 (students), seed 0 only"
start=$(date +%s)
$PY -m kdlib grid --profile "$PROFILE" --device "$DEVICE" --only E1 --seeds 0 --no-progress 2>&1 | tee "$OUT/grid-E1.txt"
mid=$(date +%s)
$PY -m kdlib grid --profile "$PROFILE" --device "$DEVICE" --only E2 --seeds 0 --no-progress 2>&1 | tee "$OUT/grid-E2.txt"
end=$(date +%s)
$PY - "$OUT" "$((mid - start))" "$((end - mid))" <<'PYEOF'
import json, sys
from pathlib import Path
out, e1, e2 = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
rows = []
for f in sorted((out / "runs").rglob("metrics.json")):
    cfg = json.loads((f.parent / "config.json").read_text())
    prov = json.loads((f.parent / "provenance.json").read_text())
    rows.append({"kind": cfg["kind"], "model": cfg["model"], "augment": cfg["augment"], "seed": cfg["seed"],
                 "epochs": cfg["recipe"]["epochs"], "accuracy": json.loads(f.read_text())["test"]["accuracy"],
                 "train_s": prov["wall_seconds"]["train"], "device": prov["device_name"]})
summary = {"E1_seconds_seed0": e1, "E2_seconds_seed0": e2, "runs": rows}
(out / "grid-summary.json").write_text(json.dumps(summary, indent=1))
for r in rows:
    print(f"{r['kind']:8} {r['model']['name']:9} {r['augment'][:40]:40} acc {r['accuracy']:.4f}  train {r['train_s']:.1f}s")
print(f"E1 {e1}s, E2 {e2}s for one seed (wall clock, this device)")
PYEOF
