#!/usr/bin/env bash
# Stops the test cluster that scripts/cluster/start.sh started: cancels its jobs, then stops slurmd, slurmctld,
# slurmdbd, MariaDB and munged by the pids in $KDC_DIR/run/ (never by name: other clusters or databases on this
# machine are left alone), waiting for each to exit (SIGKILL after 30 s). Safe to run twice, or when nothing runs.
set -uo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
. "$REPO/scripts/cluster/common.sh"
if kdc_pid slurmctld >/dev/null; then
  timeout 20 scancel --cluster="$KDC_CLUSTER" -u "$(id -un)" >/dev/null 2>&1 || true
  sleep 1
fi
# slurmd's job steps (slurmstepd) are its children's children: stop those of our jobs first
for sd in $(pgrep -x slurmstepd 2>/dev/null); do
  grep -qzx "SLURM_CONF=$SLURM_CONF" "/proc/$sd/environ" 2>/dev/null && kill "$sd" 2>/dev/null
done
status=0
for d in $KDC_DAEMONS; do
  pid=$(kdc_pid "$d") || continue
  kill "$pid" 2>/dev/null
  for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid" 2>/dev/null; sleep 0.5; fi
  if kill -0 "$pid" 2>/dev/null; then echo "error: $d (pid $pid) still running" >&2; status=1
  else echo "stopped $d (pid $pid)"; fi
done
# slurmd's link to its configuration cache (start.sh: configless), when it is ours
if [ -L /run/slurm/conf ] && [[ "$(readlink /run/slurm/conf)" == "$KDC_DIR"/* ]]; then
  rm -f /run/slurm/conf && rmdir /run/slurm 2>/dev/null
fi
exit $status
