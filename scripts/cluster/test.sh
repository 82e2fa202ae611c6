#!/usr/bin/env bash
# make test-cluster: a single-node Slurm (scripts/cluster/start.sh), the checks of tests/cluster/check_cluster.py
# against it, and every daemon stopped again (scripts/cluster/stop.sh, also on failure or Ctrl-C).
#   usage: scripts/cluster/test.sh [check_cluster.py options]      (PY: the project's python, default .venv's)
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
PY=${PY:-$REPO/.venv/bin/python}
cd "$REPO"
check=
cleanup() {  # the checks' process group first (Snakemake and its jobs' clients), then every daemon
  if [ -n "$check" ] && kill -0 "$check" 2>/dev/null; then kill -- "-$check" 2>/dev/null; sleep 2; kill -9 -- "-$check" 2>/dev/null; fi
  bash scripts/cluster/stop.sh
}
trap cleanup EXIT
trap 'exit 130' INT TERM
t0=$SECONDS
bash scripts/cluster/start.sh
. scripts/cluster/common.sh
sinfo -o "%P %D %c %m %G %t"
set +e
setsid "$PY" tests/cluster/check_cluster.py "$@" &
check=$!
wait "$check"
rc=$?
check=
echo "test-cluster: $((SECONDS - t0)) s in all (exit $rc)"
exit $rc
