# Shared by scripts/cluster/*.sh (sourced; REPO set by the caller): where the test cluster lives and its ports.
KDC_DIR=${KDC_DIR:-$REPO/.cluster}
KDC_ETC=$KDC_DIR/etc
KDC_CLUSTER=${KDC_CLUSTER:-kdtest}
KDC_PORT=${KDC_PORT:-16817}            # slurmctld; slurmd, slurmdbd and MariaDB take the next three
KDC_CTLD_PORT=$KDC_PORT
KDC_SLURMD_PORT=$((KDC_PORT + 1))
KDC_DBD_PORT=$((KDC_PORT + 2))
KDC_DB_PORT=$((KDC_PORT + 3))
KDC_GPUS=${KDC_GPUS:-$(( $(nproc) < 5 ? $(nproc) : 5 ))}   # stand-in GRES gpu on the node (start.sh; at most 5)
KDC_MUNGE_SOCKET=/run/munge/munge.socket.2   # see start.sh
KDC_DAEMONS="slurmd slurmctld slurmdbd mariadbd munged"   # the order stop.sh stops them in
export SLURM_CONF=$KDC_ETC/slurm.conf
export PATH="$PATH:/usr/sbin:/sbin"

kdc_pid() {  # the pid of one of our daemons, when its pid file names a live process
  local f=$KDC_DIR/run/$1.pid pid
  [ -s "$f" ] || return 1
  pid=$(tr -dc 0-9 < "$f")
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}
kdc_running() {
  local d
  for d in $KDC_DAEMONS; do kdc_pid "$d" >/dev/null && return 0; done
  return 1
}
