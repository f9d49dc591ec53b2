#!/usr/bin/env bash
# Stops the test cluster of scripts/slurm/slurm-up.sh: cancels its jobs, then stops slurmd,
# slurmctld and munged by the pids in their pid files (never by name, so nobody else's daemons are
# touched). With --purge it then deletes what slurm-up.sh wrote under $SLURM_LAB_DIR (default
# /tmp/slurm-lab): config, key, state and logs; other files there are kept.
#
#   bash scripts/slurm/slurm-down.sh [--purge]
set -uo pipefail

LAB=${SLURM_LAB_DIR:-/tmp/slurm-lab}
PIDS=$LAB/run
export SLURM_CONF=$LAB/etc/slurm.conf
note() { echo "[slurm-down ${SECONDS}s] $*"; }

pid_of() {
  local p
  p=$(cat "$PIDS/$1.pid" 2>/dev/null) || return 1
  [ -n "$p" ] && [ -r "/proc/$p/stat" ] || return 1
  [ "$(awk '{print $3}' "/proc/$p/stat" 2>/dev/null)" != Z ] || return 1
  [ "$(cat "/proc/$p/comm" 2>/dev/null)" = "$1" ]
  echo "$p"
}

# 1. Jobs first, while slurmctld and slurmd still run to end them (a job step's slurmstepd
#    outlives the daemons otherwise). Tasks still listed after 20 s are killed by their pids.
if pid_of slurmctld >/dev/null && [ -f "$SLURM_CONF" ]; then
  jobs=$(squeue -h -o %A 2>/dev/null | tr '\n' ' ')
  if [ -n "${jobs// /}" ]; then
    note "cancelling jobs $jobs"
    scancel $jobs 2>/dev/null
    for _ in $(seq 200); do [ -z "$(squeue -h -o %A 2>/dev/null)" ] && break; sleep 0.1; done
    for j in $(squeue -h -o %A 2>/dev/null); do
      note "job $j is still listed; killing its tasks"
      for p in $(scontrol listpids "$j" 2>/dev/null | awk 'NR > 1 && $1 ~ /^[0-9]+$/ { print $1 }'); do
        kill -KILL "$p" 2>/dev/null
      done
    done
  fi
fi

# 2. The daemons, slurmd first: TERM, then KILL after 10 s.
for d in slurmd slurmctld munged; do
  if p=$(pid_of "$d"); then
    kill -TERM "$p" 2>/dev/null
    for _ in $(seq 100); do pid_of "$d" >/dev/null || break; sleep 0.1; done
    if pid_of "$d" >/dev/null; then note "$d ($p) ignored TERM; KILL"; kill -KILL "$p" 2>/dev/null; fi
    note "stopped $d ($p)"
  fi
  rm -f "$PIDS/$d.pid"
done

# 3. --purge: only a directory that slurm-up.sh marked as its own.
if [ "${1:-}" = --purge ]; then
  if [ -f "$LAB"/.pilot-slurm-lab ]; then
    rm -rf "$LAB"/etc "$LAB"/run "$LAB"/log "$LAB"/state "$LAB"/spool "$LAB"/munge "$LAB"/tmp "$LAB"/env.sh "$LAB"/.pilot-slurm-lab
    rmdir "$LAB" 2>/dev/null && note "removed $LAB" || note "removed the cluster's files from $LAB (other files kept)"
  else
    note "not purging $LAB: slurm-up.sh's mark (.pilot-slurm-lab) is not there"
  fi
fi
note "down"
