#!/usr/bin/env bash
# A private single-node Slurm cluster for testing the jobs/*.sbatch scripts (scripts/test_slurm.sh):
# slurmctld and slurmd on this machine, authenticated by a munged of their own, started without
# systemd, with every file under one directory. Installs Debian's packages when they are missing
# (apt-get; Debian 12 gives slurm 22.05, munge 0.5.15, OpenMPI 4.1 with PMIx). Run as root.
#
#   bash scripts/slurm/slurm-up.sh          then   . "${SLURM_LAB_DIR:-/tmp/slurm-lab}/env.sh"
#   bash scripts/slurm/slurm-down.sh [--purge]
#
# Calling it again while the cluster is up only says so. Exit status: 0 up; 2 not root; 3 Slurm is
# not installed and could not be installed; 4 the daemons did not start or the node did not come up
# (the end of their logs is printed). Settings, from the environment:
#   SLURM_LAB_DIR      where config, key, state and logs live                (/tmp/slurm-lab)
#   SLURM_LAB_CPUS     CPUs the node announces, whatever the hardware has   (16)
#   SLURM_LAB_NODE     the node's name                                      (hostname -s)
#   SLURM_LAB_CTLD_PORT / SLURM_LAB_SLURMD_PORT   the daemons' ports         (6817 / 6818)
#   SLURM_LAB_TIMEOUT  seconds to wait for each daemon                      (60)
# The cluster: partition `debug` (default, no time limit, OverSubscribe=FORCE:4), MpiDefault=pmix
# (`srun --mpi=pmix`), no accounting database (no sacct; finished jobs go to log/jobcomp.log), a
# task prolog that sets OMPI_MCA_mpi_yield_when_idle=1 (and allows OpenMPI as root), requeue after
# about 10 s, finished jobs visible for 5 s (so `sbatch --wait` returns within a few seconds),
# Slurm's default KillWait (30 s) and OverTimeLimit (0).
set -euo pipefail

LAB=${SLURM_LAB_DIR:-/tmp/slurm-lab}
CPUS=${SLURM_LAB_CPUS:-16}
HOST=$(hostname -s)          # slurmctld accepts only this machine's own name as SlurmctldHost
NODE=${SLURM_LAB_NODE:-$HOST}
CTLD_PORT=${SLURM_LAB_CTLD_PORT:-6817}
SLURMD_PORT=${SLURM_LAB_SLURMD_PORT:-6818}
WAIT=${SLURM_LAB_TIMEOUT:-60}
CONF=$LAB/etc/slurm.conf
PIDS=$LAB/run
LOGS=$LAB/log
SOCKET=$PIDS/munge.socket
export SLURM_CONF=$CONF
START=$SECONDS

note() { echo "[slurm-up ${SECONDS}s] $*"; }
# give_up STATUS MESSAGE: say why, show the daemons' last log lines, stop what was started.
give_up() {
  local status=$1; shift
  echo "[slurm-up ${SECONDS}s] cannot bring Slurm up: $*" >&2
  local f
  for f in "$LOGS"/munged.log "$LOGS"/slurmctld.log "$LOGS"/slurmd.log; do
    if [ -s "$f" ]; then echo "== last lines of $f" >&2; tail -n 15 "$f" >&2; fi
  done
  stop_ours
  exit "$status"
}

. "$(dirname "$0")/lib.sh"
# stop_ours: TERM (then KILL after 5 s) to our own daemons, found by their pid files only.
stop_ours() {
  local d p
  for d in slurmd slurmctld munged; do
    if p=$(pid_of "$d"); then
      kill "$p" 2>/dev/null || true
      for _ in $(seq 50); do pid_of "$d" >/dev/null || break; sleep 0.1; done
      if pid_of "$d" >/dev/null; then kill -9 "$p" 2>/dev/null || true; fi
    fi
    rm -f "$PIDS/$d.pid"
  done
}
# within SECONDS COMMAND...: true as soon as COMMAND succeeds (tried every 0.1 s), false after SECONDS.
within() {
  local limit=$(( $1 * 10 )) i; shift
  for (( i = 0; i < limit; i++ )); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  return 1
}
node_state() { sinfo -h -n "$NODE" -o %T 2>/dev/null; }
node_usable() { [[ $(node_state) =~ ^(idle|mixed|allocated)$ ]]; }
munge_answers() { munge -S "$SOCKET" -n | unmunge -S "$SOCKET"; }
ctld_up() { scontrol ping 2>/dev/null | grep -q "is UP"; }

[ "$(id -u)" = 0 ] || { echo "[slurm-up] run as root: the daemons run as root here" >&2; exit 2; }

# ---- packages
NEEDED=(slurmctld slurmd slurm-client munge openmpi-bin libopenmpi-dev)
installed() {
  local c
  for c in slurmctld slurmd sbatch srun sinfo scontrol munged mungekey munge mpirun; do
    command -v "$c" >/dev/null 2>&1 || return 1
  done
  compgen -G "/usr/lib/*/slurm-wlm/mpi_pmix.so" >/dev/null   # srun --mpi=pmix
}
mkdir -p "$LAB"/etc "$PIDS" "$LOGS" "$LAB"/state "$LAB"/spool "$LAB"/munge "$LAB"/tmp
touch "$LAB"/.pilot-slurm-lab     # slurm-down.sh --purge deletes only a directory that has this mark
chmod 700 "$LAB"/munge
if ! installed; then
  note "installing ${NEEDED[*]} (apt-get; log in $LOGS/apt.log)"
  command -v apt-get >/dev/null || give_up 3 "Slurm is not installed and there is no apt-get to install it"
  export DEBIAN_FRONTEND=noninteractive
  aptget() { apt-get -o DPkg::Lock::Timeout=600 "$@" >>"$LOGS"/apt.log 2>&1; }
  # The package lists may be stale or absent on a fresh machine: update once if the first try fails.
  aptget install -y --no-install-recommends "${NEEDED[@]}" \
    || { aptget update || true; aptget install -y --no-install-recommends "${NEEDED[@]}"; } \
    || { tail -n 5 "$LOGS"/apt.log >&2; give_up 3 "apt-get could not install Slurm (no network or no package source?)"; }
  installed || give_up 3 "the packages are installed but a command or the PMIx plugin is missing"
  note "installed"
fi

# ---- already running?
if pid_of munged >/dev/null && pid_of slurmctld >/dev/null && pid_of slurmd >/dev/null && node_usable; then
  note "already up: node $NODE is $(node_state)"
  exit 0
fi
stop_ours    # whatever is left of an earlier cluster (one daemon died, say) is stopped and started afresh

# ---- configuration
[ -s "$LAB"/munge/munge.key ] || mungekey --create --keyfile="$LAB"/munge/munge.key --force
chmod 600 "$LAB"/munge/munge.key
cat >"$CONF" <<CONF
# slurm.conf of pilot's single-node test cluster, written by scripts/slurm/slurm-up.sh
ClusterName=pilot-lab
SlurmctldHost=$HOST(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# Our own munged socket. cred_expire is also the wait before a requeued job may start again.
AuthInfo=socket=$SOCKET,cred_expire=10
StateSaveLocation=$LAB/state
SlurmdSpoolDir=$LAB/spool
TmpFS=$LAB/tmp
SlurmctldPidFile=$PIDS/slurmctld.pid
SlurmdPidFile=$PIDS/slurmd.pid
SlurmctldLogFile=$LOGS/slurmctld.log
SlurmdLogFile=$LOGS/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
MailProg=/bin/true
# No cgroups: processes are tracked through their parents.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
TaskProlog=$LAB/etc/task_prolog.sh
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$LOGS/jobcomp.log
# A scheduling pass every second, so that a submitted job starts within about a second.
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1,bf_interval=1
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
# Believe the CPU count below rather than the hardware, so the node is not drained for "Low CPUs".
SlurmdParameters=config_overrides
MpiDefault=pmix
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=60
# sbatch --wait polls less and less often while MinJobAge allows; 5 s keeps its answer prompt.
MinJobAge=5
# Slurm's default: SIGKILL comes 30 s after the SIGTERM of a time limit or scancel. jobs/lib.sh gives
# pilot KillWait - 10 s to commit the round in progress (scripts/test_slurm.sh, case e).
KillWait=30
InactiveLimit=0
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=8000 State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4
CONF
# Every task of every job gets these: more ranks than cores must yield when idle (busy-polling
# OpenMPI ranks starve one another), and OpenMPI refuses root unless told.
cat >"$LAB"/etc/task_prolog.sh <<'PROLOG'
#!/bin/sh
echo export OMPI_MCA_mpi_yield_when_idle=1
if [ "$(id -u)" = 0 ]; then
  echo export OMPI_ALLOW_RUN_AS_ROOT=1
  echo export OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
PROLOG
chmod 755 "$LAB"/etc/task_prolog.sh
rm -f "$LAB"/etc/cgroup.conf
echo "PMIxCliTmpDirBase=$LAB/tmp" >"$LAB"/etc/mpi.conf     # PMIx's per-step files stay under $LAB too
echo "export SLURM_CONF=$CONF" >"$LAB"/env.sh

# ---- daemons
note "starting munged, slurmctld and slurmd (node $NODE, $CPUS CPUs)"
rm -f "$SOCKET" "$SOCKET".lock
munged --key-file="$LAB"/munge/munge.key --socket="$SOCKET" --pid-file="$PIDS"/munged.pid \
       --log-file="$LOGS"/munged.log --seed-file="$LAB"/munge/munged.seed \
  || give_up 4 "munged did not start"
within 10 munge_answers || give_up 4 "munged does not answer on $SOCKET"
slurmctld -f "$CONF" || give_up 4 "slurmctld did not start"
within "$WAIT" ctld_up || give_up 4 "slurmctld is not UP after $WAIT s"
slurmd -f "$CONF" -N "$NODE" || give_up 4 "slurmd did not start"
if ! within "$WAIT" node_usable; then
  note "node $NODE is '$(sinfo -h -n "$NODE" -o '%T %E' 2>/dev/null)'; resuming it"
  scontrol update nodename="$NODE" state=resume >/dev/null 2>&1 || true
  within 10 node_usable || give_up 4 "node $NODE did not become idle (state: $(sinfo -h -n "$NODE" -o '%T %E' 2>&1))"
fi
note "up in $(( SECONDS - START )) s: node $NODE $(node_state), munged $(pid_of munged), slurmctld $(pid_of slurmctld), slurmd $(pid_of slurmd); . $LAB/env.sh"
