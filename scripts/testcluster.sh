#!/usr/bin/env bash
# A cluster of 3 hosts on this one machine, for tests (docs/running.md, "Several nodes"):
#   scripts/testcluster.sh up       make the hosts (as root)
#   scripts/testcluster.sh down     remove them and everything `up` made
#   scripts/testcluster.sh exec HOST CMD...   run CMD on HOST (tc-h0, tc-h1 or tc-h2)
#   scripts/testcluster.sh mpirun [ARGS...]   scripts/mpirun.sh on tc-h0 with the cluster's flags
#                                             (ARGS as for mpirun: -np N pilot ...; ranks fill tc-h0,
#                                             then tc-h1, then tc-h2, PILOT_SLOTS per host, default 3,2,2)
#   scripts/testcluster.sh slurm-up|slurm-down   Slurm on the hosts: slurmctld on tc-h0, a slurmd on each
#                                   host (its own hostname, spool and log), munged with a socket of its own;
#                                   submit with `scripts/testcluster.sh exec tc-h0 sbatch ...` (SLURM_CONF set)
#   scripts/testcluster.sh test     up, the checks of scripts/testcluster_checks.sh (one PASS or FAIL
#                                   line each), down; exits non-zero if any check fails
#
# Each host is a network namespace (pilot-tc-hN) with one veth interface, address 10.231.77.(N+1)/24,
# on a bridge that lives in a namespace of its own (pilot-tc-net): nothing is added to this machine's
# own network namespace, there is no default route, and no traffic leaves these namespaces. Every
# command run on a host also gets its own hostname (a UTS namespace: tc-hN), so that Open MPI, PMIx and
# pilot's node split see three nodes, and its own mount namespace, in which the host's scratch
# directory ($STATE/hosts/tc-hN/scratch) is mounted at $STATE/scratch: the same path names a different,
# node-local directory on each host, as /scratch or $TMPDIR does on a cluster. $STATE/shared is the
# one directory every host writes to, standing for the cluster's shared file system (run directories).
# Open MPI starts its daemons on tc-h1 and tc-h2 through $STATE/agent (plm_rsh_agent) instead of ssh.
# Environment: PILOT_TESTCLUSTER_STATE (default /tmp/pilot-testcluster).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
STATE=${PILOT_TESTCLUSTER_STATE:-/tmp/pilot-testcluster}
SUBNET=10.231.77
HOSTS=(tc-h0 tc-h1 tc-h2)
NETNS=pilot-tc-net

die() { echo "testcluster: $*" >&2; exit 1; }
netns_of() { echo "pilot-$1"; }          # tc-h1 -> pilot-tc-h1
known_host() { local h; for h in "${HOSTS[@]}"; do [ "$h" = "$1" ] && return 0; done; return 1; }

up() {
  [ "$(id -u)" = 0 ] || die "needs root (ip netns, mount --bind): run as root or under sudo"
  command -v ip >/dev/null || die "no 'ip' command: apt-get install iproute2"
  ip netns list | grep -q "^$NETNS\b" && die "already up ($NETNS exists): scripts/testcluster.sh down first"
  mkdir -p "$STATE/shared" "$STATE/scratch" "$STATE/cgroup"
  chmod 1777 "$STATE/shared"
  # this machine's cgroup file systems, for slurmd on the hosts (`ip netns exec` hides /sys/fs/cgroup)
  mount --rbind /sys/fs/cgroup "$STATE/cgroup" && mount --make-rslave "$STATE/cgroup" || true
  ip netns add "$NETNS"
  ip -n "$NETNS" link add br0 type bridge
  ip -n "$NETNS" link set br0 up
  local i h ns
  for i in "${!HOSTS[@]}"; do
    h=${HOSTS[$i]}; ns=$(netns_of "$h")
    ip netns add "$ns"
    ip -n "$NETNS" link add "veth-$h" type veth peer name eth0 netns "$ns"
    ip -n "$NETNS" link set "veth-$h" master br0 up
    ip -n "$ns" link set lo up
    ip -n "$ns" addr add "$SUBNET.$((i + 1))/24" dev eth0
    ip -n "$ns" link set eth0 up
    mkdir -p "$STATE/hosts/$h/scratch" "/etc/netns/$ns"
    # `ip netns exec` mounts /etc/netns/NS/hosts over /etc/hosts: the hosts know each other by name
    { echo "127.0.0.1 localhost"
      local j; for j in "${!HOSTS[@]}"; do echo "$SUBNET.$((j + 1)) ${HOSTS[$j]}"; done; } >"/etc/netns/$ns/hosts"
  done
  # The launcher agent: Open MPI runs `agent HOST CMD...` to start its daemon on HOST.
  cat >"$STATE/agent" <<EOF
#!/bin/sh
host=\$1; shift
exec "$REPO/scripts/testcluster.sh" exec "\$host" /bin/sh -c "\$*"
EOF
  chmod +x "$STATE/agent"
  echo "testcluster: up: ${HOSTS[*]} on $SUBNET.0/24 (state in $STATE)"
}

down() {
  local h ns
  [ -d "$SLURM_LAB/run" ] && slurm_down
  for h in "${HOSTS[@]}"; do
    ns=$(netns_of "$h")
    if ip netns list | grep -q "^$ns\b"; then
      # every process still in the host's namespace (a rank that outlived a failed test)
      ip netns pids "$ns" 2>/dev/null | xargs -r kill -KILL 2>/dev/null || true
      ip netns del "$ns"
    fi
    rm -rf "/etc/netns/$ns"
  done
  if ip netns list | grep -q "^$NETNS\b"; then ip netns del "$NETNS"; fi
  # the cgroup binds of this state directory, and of any earlier test cluster killed before its `down`
  local m
  for m in $(awk '$2 ~ /^\/tmp\/pilot-testcluster[^/]*\/cgroup$/ { print $2 }' /proc/self/mounts | sort -u) "$STATE/cgroup"; do
    if mountpoint -q "$m" 2>/dev/null; then umount -R "$m" 2>/dev/null || umount -lR "$m" || true; fi
  done
  if mountpoint -q "$STATE/cgroup" 2>/dev/null || grep -q " $STATE/" /proc/self/mounts; then
    echo "testcluster: left $STATE in place: something is still mounted under it (grep $STATE /proc/self/mounts)"
  else
    case $STATE in /tmp/*) rm -rf "$STATE" ;; *) echo "testcluster: left $STATE in place (not under /tmp)" ;; esac
  fi
  echo "testcluster: down"
}

# exec HOST CMD...: CMD in HOST's network namespace, with HOST's hostname and HOST's scratch at $STATE/scratch.
exec_on() {
  local h=$1; shift
  known_host "$h" || die "unknown host '$h' (hosts: ${HOSTS[*]})"
  [ -d "$STATE/hosts/$h/scratch" ] || die "the cluster is not up ($STATE/hosts/$h missing): scripts/testcluster.sh up"
  # PILOT_TC_NO_SHARED=HOST (for a test): HOST sees an empty directory in place of $STATE/shared
  local hide=""; [ "${PILOT_TC_NO_SHARED:-}" = "$h" ] && hide=$STATE/hosts/$h/empty && mkdir -p "$hide"
  exec ip netns exec "$(netns_of "$h")" unshare --uts --mount --propagation private /bin/sh -c '
    hostname "$1" && mount --bind "$2" "$3" || exit 1
    # `ip netns exec` mounts a fresh /sys without the cgroup file systems, which slurmd needs: `up` binds
    # them at $STATE/cgroup
    if [ -d "$6" ] && ! mountpoint -q /sys/fs/cgroup; then mount --rbind "$6" /sys/fs/cgroup || exit 1; fi
    if [ -n "$4" ]; then mount --bind "$4" "$5" || exit 1; fi
    shift 6; exec "$@"' testcluster "$h" "$STATE/hosts/$h/scratch" "$STATE/scratch" "$hide" "$STATE/shared" "$STATE/cgroup" "$@"
}

SLURM_LAB=$STATE/slurm
slurm_up() {
  local c; for c in slurmctld slurmd munged mungekey; do command -v $c >/dev/null || die "no $c: install Slurm (scripts/slurm/slurm-up.sh does)"; done
  [ -d "$STATE/hosts/tc-h0" ] || die "the cluster is not up: scripts/testcluster.sh up"
  local L=$SLURM_LAB h i
  mkdir -p "$L/etc" "$L/run" "$L/log" "$L/state" "$L/munge"
  for h in "${HOSTS[@]}"; do mkdir -p "$L/spool-$h" "$STATE/hosts/$h/scratch/slurm-tmp"; done
  chmod 700 "$L/munge"
  [ -s "$L/munge/munge.key" ] || mungekey --create --keyfile="$L/munge/munge.key" --force
  chmod 600 "$L/munge/munge.key"
  { cat <<CONF
ClusterName=pilot-tc
SlurmctldHost=tc-h0($SUBNET.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$L/run/munge.socket,cred_expire=10
StateSaveLocation=$L/state
# per node (%n): spool, pid and log; TmpFS and PMIx's directory on the node-local scratch
SlurmdSpoolDir=$L/spool-%n
SlurmdPidFile=$L/run/slurmd-%n.pid
SlurmdLogFile=$L/log/slurmd-%n.log
TmpFS=$STATE/scratch/slurm-tmp
SlurmctldPidFile=$L/run/slurmctld.pid
SlurmctldLogFile=$L/log/slurmctld.log
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
TaskProlog=$L/etc/task_prolog.sh
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1,bf_interval=1
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SlurmdParameters=config_overrides
MpiDefault=pmix
ReturnToService=2
MinJobAge=5
KillWait=30
InactiveLimit=0
CONF
    for i in "${!HOSTS[@]}"; do echo "NodeName=${HOSTS[$i]} NodeAddr=$SUBNET.$((i + 1)) CPUs=4 RealMemory=4000 State=UNKNOWN"; done
    echo "PartitionName=debug Nodes=tc-h[0-2] Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4"
  } >"$L/etc/slurm.conf"
  echo "PMIxCliTmpDirBase=$STATE/scratch/slurm-tmp" >"$L/etc/mpi.conf"
  printf '#!/bin/sh\necho export OMPI_MCA_mpi_yield_when_idle=1\necho export OMPI_ALLOW_RUN_AS_ROOT=1\necho export OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1\n' >"$L/etc/task_prolog.sh"
  chmod 755 "$L/etc/task_prolog.sh"
  export SLURM_CONF=$L/etc/slurm.conf
  rm -f "$L/run/munge.socket"
  munged --key-file="$L/munge/munge.key" --socket="$L/run/munge.socket" --pid-file="$L/run/munged.pid" \
    --log-file="$L/log/munged.log" --seed-file="$L/munge/munged.seed" || die "munged did not start ($L/log/munged.log)"
  ( exec_on tc-h0 slurmctld -f "$SLURM_CONF" ) || die "slurmctld did not start ($L/log/slurmctld.log)"
  for h in "${HOSTS[@]}"; do ( exec_on "$h" slurmd -f "$SLURM_CONF" -N "$h" ) || die "slurmd on $h did not start ($L/log/slurmd-$h.log)"; done
  for i in $(seq 300); do
    [ "$( (exec_on tc-h0 sinfo -h -o %T) 2>/dev/null | sort -u)" = idle ] && break
    sleep 0.2
  done
  [ "$( (exec_on tc-h0 sinfo -h -o %T) 2>/dev/null | sort -u)" = idle ] || die "the nodes are not idle after 60 s: $( (exec_on tc-h0 sinfo -N -h -o '%N %T %E') 2>&1 | tr '\n' ';')"
  echo "testcluster: Slurm up: slurmctld on tc-h0, slurmd on ${HOSTS[*]}; export SLURM_CONF=$SLURM_CONF"
}

slurm_down() {
  local f
  for f in "$SLURM_LAB"/run/slurmd-*.pid "$SLURM_LAB"/run/slurmctld.pid "$SLURM_LAB"/run/munged.pid; do
    [ -s "$f" ] && kill "$(cat "$f")" 2>/dev/null
  done
  sleep 1
  for f in "$SLURM_LAB"/run/*.pid; do [ -s "$f" ] && kill -KILL "$(cat "$f")" 2>/dev/null; rm -f "$f"; done
  return 0
}

cluster_mpirun() {
  local slots=${PILOT_SLOTS:-3,2,2} hostlist="" i s
  IFS=, read -r -a s <<<"$slots"
  for i in "${!HOSTS[@]}"; do hostlist+="${hostlist:+,}${HOSTS[$i]}:${s[$i]:-1}"; done
  exec_on tc-h0 "$REPO/scripts/mpirun.sh" -H "$hostlist" --map-by slot \
    --mca plm_rsh_agent "$STATE/agent" \
    --mca oob_tcp_if_include "$SUBNET.0/24" --mca btl_tcp_if_include "$SUBNET.0/24" \
    --mca btl tcp,vader,self "$@"
}

case ${1:-} in
  up) up ;;
  down) down ;;
  slurm-up) slurm_up ;;
  slurm-down) slurm_down ;;
  exec) shift; [ $# -ge 2 ] || die "usage: scripts/testcluster.sh exec HOST CMD..."; exec_on "$@" ;;
  mpirun) shift; cluster_mpirun "$@" ;;
  test)
    shift
    # a cluster left by a test that was killed before its `down` (the names are this script's own)
    if ip netns list 2>/dev/null | grep -q "^$NETNS\b"; then echo "testcluster: tearing down a cluster left by an earlier test"; down; fi
    up
    trap down EXIT    # torn down also when a check fails or the test is interrupted
    PILOT_TESTCLUSTER_STATE=$STATE bash "$REPO/scripts/testcluster_checks.sh" "$@" ;;
  *) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; [ "${1:-}" = -h ] || [ "${1:-}" = --help ] || exit 2 ;;
esac
