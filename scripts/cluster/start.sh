#!/usr/bin/env bash
# A single-node Slurm on this machine, for `make test-cluster`: munge, MariaDB, slurmdbd (job accounting, which
# the Snakemake executor reads through sacct), slurmctld and slurmd with the machine's cores and memory.
# Everything lives in a private directory ($KDC_DIR, default .cluster/ in the repository, git-ignored): the
# configuration (slurm.conf, gres.conf, slurmdbd.conf; clients find it through SLURM_CONF), the munge key and
# socket, the database, state, logs and pid files. Nothing in /etc is written, no systemd; the daemons use their
# own ports ($KDC_PORT..$KDC_PORT+3), so a system Slurm or MariaDB on the default ports is left alone.
# scripts/cluster/stop.sh stops every daemon this started (by the pids in $KDC_DIR/run/).
#
# Partitions: `gpu` and `cpu` (the names profiles/slurm/config.yaml uses), both on this node. The node advertises
# $KDC_GPUS stand-in `gpu` GRES (no GPU here: each is a harmless character device, /dev/null, /dev/zero, ...), so the profile's `gpu: 1` requests are
# submitted and scheduled exactly as on a GPU cluster; the jobs then run on the CPU (`--device auto`).
#
#   usage: scripts/cluster/start.sh        (then: source .cluster/env.sh; sinfo; ...; scripts/cluster/stop.sh)
# Debian packages: slurmctld slurmd slurmdbd slurm-client munge mariadb-server (installed when missing, as
# scripts/system_deps.sh does, with apt-get as root or through password-less sudo).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
. "$REPO/scripts/cluster/common.sh"

# --- Debian packages -----------------------------------------------------------------------------------------
need=()
for pair in slurmctld:slurmctld slurmd:slurmd slurmdbd:slurmdbd sbatch:slurm-client munged:munge \
            mariadbd:mariadb-server; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || [ -x "/usr/sbin/${pair%%:*}" ] || need+=("${pair#*:}")
done
if [ ${#need[@]} -gt 0 ]; then
  sudo=()
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo=(sudo -n); else
      echo "error: missing Debian packages ${need[*]} (not root, no password-less sudo); fix: sudo apt-get install -y ${need[*]}" >&2
      exit 1
    fi
  fi
  echo "installing Debian packages: ${need[*]}" >&2
  # policy-rc.d keeps the packages' own services from starting (they would take the default ports)
  if ! { "${sudo[@]}" apt-get update -qq &&
         DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}"; } >/dev/null; then
    echo "error: apt-get install ${need[*]} failed; install them by hand" >&2
    exit 1
  fi
fi
export PATH="$PATH:/usr/sbin:/sbin"

if [ "$(id -u)" != 0 ]; then
  # slurmd launches jobs as their user and must run as root; so must this single-user test cluster
  echo "error: the test cluster's slurmd must run as root (run make test-cluster as root)" >&2
  exit 1
fi

if kdc_running; then
  echo "error: a test cluster is already running from $KDC_DIR (scripts/cluster/stop.sh stops it)" >&2
  exit 1
fi
for port in $KDC_DB_PORT $KDC_CTLD_PORT $KDC_SLURMD_PORT $KDC_DBD_PORT; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "error: port $port is in use (another test cluster?); set KDC_PORT to another base" >&2
    exit 1
  fi
done

if [ -e /run/slurm/conf ] || [ -L /run/slurm/conf ]; then
  echo "error: /run/slurm/conf exists ($(readlink /run/slurm/conf || true)): another configless slurmd runs here" >&2
  exit 1
fi
rm -rf "$KDC_DIR"
mkdir -p "$KDC_DIR" && printf 'export SLURM_CONF=%q\nexport PATH="$PATH:/usr/sbin:/sbin"\n' "$SLURM_CONF" > "$KDC_DIR/env.sh"
mkdir -p "$KDC_DIR"/{etc,run,log,munge,mysql,ctld,slurmd}
chmod 700 "$KDC_DIR" "$KDC_DIR/munge"

# --- the configuration -----------------------------------------------------------------------------------------
node=$(hostname -s)
cpus=$(nproc)
mem_total=$(awk '/^MemTotal:/ {print int($2/1024)}' /proc/meminfo)
mem=$((mem_total * 90 / 100))   # slurmd drains a node whose RealMemory exceeds what it finds
cat > "$KDC_ETC/slurm.conf" <<EOF
# made by scripts/cluster/start.sh: a single-node test cluster
ClusterName=$KDC_CLUSTER
SlurmctldHost=$node(127.0.0.1)
SlurmctldPort=$KDC_CTLD_PORT
SlurmdPort=$KDC_SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$KDC_MUNGE_SOCKET
CredType=cred/munge
StateSaveLocation=$KDC_DIR/ctld
SlurmdSpoolDir=$KDC_DIR/slurmd
SlurmctldPidFile=$KDC_DIR/run/slurmctld.pid
SlurmdPidFile=$KDC_DIR/run/slurmd.pid
SlurmctldLogFile=$KDC_DIR/log/slurmctld.log
SlurmdLogFile=$KDC_DIR/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SwitchType=switch/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
GresTypes=gpu
ReturnToService=2
SlurmctldParameters=enable_configless
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=$KDC_DBD_PORT
AccountingStorageTRES=gres/gpu
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=5
JobCompType=jobcomp/none
AccountingStoreFlags=job_comment
MinJobAge=300
KillWait=10
InactiveLimit=0
SlurmctldTimeout=60
SlurmdTimeout=60
NodeName=$node NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem Gres=gpu:$KDC_GPUS State=UNKNOWN
PartitionName=gpu Nodes=$node Default=YES MaxTime=INFINITE State=UP
PartitionName=cpu Nodes=$node MaxTime=INFINITE State=UP
EOF
# Stand-in GPUs: Slurm 22.05's gres/gpu counts device files (a count-only line reports 0 and the node is drained),
# so each stand-in names one harmless character device; with task/none nothing restricts access to them.
devs=(/dev/null /dev/zero /dev/full /dev/random /dev/urandom)
[ "$KDC_GPUS" -le ${#devs[@]} ] || { echo "error: KDC_GPUS=$KDC_GPUS: at most ${#devs[@]} stand-in GPUs" >&2; exit 1; }
: > "$KDC_ETC/gres.conf"
for dev in "${devs[@]:0:$KDC_GPUS}"; do echo "NodeName=$node Name=gpu File=$dev" >> "$KDC_ETC/gres.conf"; done
KDC_DB_PASS=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
cat > "$KDC_ETC/slurmdbd.conf" <<EOF
AuthType=auth/munge
AuthInfo=socket=$KDC_MUNGE_SOCKET
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=$KDC_DBD_PORT
SlurmUser=root
PidFile=$KDC_DIR/run/slurmdbd.pid
LogFile=$KDC_DIR/log/slurmdbd.log
DebugLevel=info
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$KDC_DB_PORT
StorageUser=slurm
StoragePass=$KDC_DB_PASS
StorageLoc=slurm_acct_db
EOF
chmod 600 "$KDC_ETC/slurmdbd.conf"

fail() { echo "error: $1 (log: $2)" >&2; tail -n 20 "$2" >&2 || true; exit 1; }
wait_for() {  # wait_for SECONDS WHAT LOG COMMAND...: poll COMMAND (5 s at most a try) until it succeeds
  local t=$1 what=$2 log=$3 end=$((SECONDS + $1)); shift 3
  while [ $SECONDS -lt $end ]; do timeout 5 "$@" >/dev/null 2>&1 && return 0; sleep 0.5; done
  fail "$what did not come up within ${t}s" "$log"
}

# --- munge ----------------------------------------------------------------------------------------------------
mungekey --create --keyfile="$KDC_DIR/munge/munge.key" --force >/dev/null 2>&1 ||
  dd if=/dev/urandom of="$KDC_DIR/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$KDC_DIR/munge/munge.key"
# Slurm 22.05's clients (sacctmgr, sacct) ignore AuthInfo=socket= on their connections to slurmdbd and use munge's
# default socket, so our munged takes that one; it refuses to start when another munged already answers there.
if munge -S "$KDC_MUNGE_SOCKET" -n >/dev/null 2>&1; then
  echo "error: a munged already runs on $KDC_MUNGE_SOCKET (a system Slurm?); stop it, or use that cluster" >&2
  exit 1
fi
mkdir -p "$(dirname "$KDC_MUNGE_SOCKET")"
munged --socket="$KDC_MUNGE_SOCKET" --key-file="$KDC_DIR/munge/munge.key" --pid-file="$KDC_DIR/run/munged.pid" \
  --log-file="$KDC_DIR/log/munged.log" --seed-file="$KDC_DIR/munge/munge.seed" --force \
  || fail "munged did not start" "$KDC_DIR/log/munged.log"
wait_for 20 munged "$KDC_DIR/log/munged.log" bash -c "munge -S '$KDC_MUNGE_SOCKET' -n | unmunge -S '$KDC_MUNGE_SOCKET'"

# --- MariaDB (TCP on 127.0.0.1:$KDC_DB_PORT, its own data directory) ----------------------------------------
mariadb-install-db --no-defaults --datadir="$KDC_DIR/mysql" --user=root --auth-root-authentication-method=socket \
  --skip-test-db > "$KDC_DIR/log/mariadb-install.log" 2>&1 || fail "mariadb-install-db failed" "$KDC_DIR/log/mariadb-install.log"
setsid mariadbd --no-defaults --datadir="$KDC_DIR/mysql" --user=root --bind-address=127.0.0.1 --port="$KDC_DB_PORT" \
  --socket="$KDC_DIR/run/mysql.sock" --pid-file="$KDC_DIR/run/mariadbd.pid" --log-error="$KDC_DIR/log/mariadb.log" \
  --innodb-buffer-pool-size=64M --skip-name-resolve < /dev/null > /dev/null 2>&1 &
wait_for 60 mariadbd "$KDC_DIR/log/mariadb.log" mariadb --no-defaults -S "$KDC_DIR/run/mysql.sock" -u root -e 'select 1'
mariadb --no-defaults -S "$KDC_DIR/run/mysql.sock" -u root <<EOF
CREATE DATABASE slurm_acct_db;
CREATE USER 'slurm'@'127.0.0.1' IDENTIFIED BY '$KDC_DB_PASS';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
FLUSH PRIVILEGES;
EOF

# --- slurmdbd, the cluster in the accounts, slurmctld, slurmd --------------------------------------------------
# (slurmdbd reads slurmdbd.conf from the directory of $SLURM_CONF)
slurmdbd || fail "slurmdbd did not start" "$KDC_DIR/log/slurmdbd.log"
wait_for 60 slurmdbd "$KDC_DIR/log/slurmdbd.log" sacctmgr -n list cluster
sacctmgr -i add cluster "$KDC_CLUSTER" >/dev/null
slurmctld -f "$KDC_ETC/slurm.conf" || fail "slurmctld did not start" "$KDC_DIR/log/slurmctld.log"
wait_for 60 slurmctld "$KDC_DIR/log/slurmctld.log" scontrol ping
# Configless, as many sites run it: slurmd fetches slurm.conf and gres.conf from slurmctld, caches them in its spool
# folder and links /run/slurm/conf to that cache, where Slurm's clients look when SLURM_CONF is unset. The jobs need
# that: the executor's jobstep (inside each job) drops every SLURM_* variable, SLURM_CONF too, before its srun.
env -u SLURM_CONF slurmd --conf-server "127.0.0.1:$KDC_CTLD_PORT" -N "$node" ||
  fail "slurmd did not start" "$KDC_DIR/log/slurmd.log"
wait_for 60 "the node $node" "$KDC_DIR/log/slurmd.log" \
  bash -c "sinfo -h -n '$node' -o %t | grep -q -x -E 'idle|mix|alloc'"
echo "test cluster $KDC_CLUSTER up: node $node, $cpus CPUs, ${mem} MB, $KDC_GPUS stand-in GPUs; partitions gpu, cpu;" \
     "SLURM_CONF=$KDC_ETC/slurm.conf (source $KDC_DIR/env.sh)"
