#!/usr/bin/env bash
# mpirun with the flags this kind of machine needs: root is allowed, more ranks than cores are
# allowed (ranks then yield when idle instead of busy-polling, and BLAS uses one thread per rank),
# and ranks are not pinned to single cores. Usage: scripts/mpirun.sh -np 4 .build/release/pilot selftest
set -euo pipefail
args=(--oversubscribe --bind-to none -x OMPI_MCA_mpi_yield_when_idle=1 -x "OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}")
if [ "$(id -u)" = "0" ]; then args=(--allow-run-as-root "${args[@]}"); fi
# OpenMPI hands rank 0 a pseudo-terminal even when mpirun's own output goes to a file or a pipe;
# tell pilot whether a person is actually watching, so that logs get no progress redraws.
if [ -t 1 ]; then args+=(-x PILOT_TTY=1); else args+=(-x PILOT_TTY=0); fi
export OMPI_MCA_mpi_yield_when_idle=1
# TERM or INT (Ctrl-C, `kill <this script's pid>`) become pilot's graceful stop: mpirun forwards USR1
# to every rank, the round in progress commits, and the job exits 75 (`pilot train --resume` goes on).
# mpirun runs in its own session so that a terminal's Ctrl-C reaches only this script, not mpirun
# (which would abort the job at once); a second TERM or INT aborts it.
setsid mpirun "${args[@]}" "$@" &
pid=$!
signals=0
stop() {
  signals=$((signals + 1))
  if [ "$signals" = 1 ]; then
    echo "mpirun.sh: $1: asking every rank to commit its round and stop (again to abort now)" >&2
    kill -USR1 "$pid" 2>/dev/null || true
  else
    echo "mpirun.sh: $1 again: aborting the job" >&2
    kill -TERM "$pid" 2>/dev/null || true
  fi
}
trap 'stop TERM' TERM
trap 'stop INT' INT
rc=0
while true; do
  wait "$pid" && rc=0 || rc=$?
  # wait returns > 128 when a trapped signal interrupts it; the job may still be running
  kill -0 "$pid" 2>/dev/null || break
done
exit "$rc"
