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
if [ -n "${PILOT_STOP_GRACE:-}" ]; then args+=(-x PILOT_STOP_GRACE); fi
export OMPI_MCA_mpi_yield_when_idle=1

# Signals (docs/running.md, "Stopping a run"). Open MPI 4.1's mpirun forwards USR1 and USR2 to
# every rank, but answers TERM, INT and HUP by killing the job: SIGCONT to the ranks at once,
# SIGTERM 1 s later, SIGKILL 1 s after that, and exit 1, too soon for any round to commit. So:
#  - mpirun runs in its own session, so that a terminal's Ctrl-C reaches only this script, and with
#    TERM and INT blocked (perl sets the mask; Open MPI unblocks every signal in the ranks): a TERM
#    or INT sent to mpirun itself stays pending, this script sees it in /proc and acts as below;
#  - TERM or INT (to this script or to mpirun): USR2 to mpirun, which forwards it to every rank;
#    pilot commits the round in progress if it can within its stop grace (PILOT_STOP_GRACE, 20 s)
#    and every rank exits 75 either way, which this script returns (`pilot train --resume` goes on);
#  - USR1: passed on as USR1 (commit the round in progress however long it takes, exit 75);
#  - a second TERM or INT to this script aborts the job (HUP to mpirun: Open MPI's kill, exit 1).
# Ranks signalled directly (TERM, INT, USR1 or USR2 to the pilot processes) stop in the same way.
block=()
if command -v perl >/dev/null 2>&1; then
  block=(perl -MPOSIX -e 'sigprocmask(SIG_BLOCK, POSIX::SigSet->new(SIGTERM, SIGINT)) or die "sigprocmask: $!\n";
                          exec { $ARGV[0] } @ARGV or die "mpirun.sh: cannot run $ARGV[0]: $!\n"' --)
else
  echo "mpirun.sh: no perl here, so mpirun runs with TERM and INT unblocked: TERM sent to mpirun itself kills the job (TERM to this script still stops it gracefully)" >&2
fi
setsid "${block[@]}" mpirun "${args[@]}" "$@" &
pid=$!
signals=0
stop() {
  signals=$((signals + 1))
  if [ "$signals" = 1 ]; then
    echo "mpirun.sh: $1: asking every rank to commit the round in progress within the stop grace (${PILOT_STOP_GRACE:-20} s) and exit 75 (TERM or INT again aborts now)" >&2
    kill -USR2 "$pid" 2>/dev/null || true
  else
    echo "mpirun.sh: $1 again: aborting the job" >&2
    kill -HUP "$pid" 2>/dev/null || true
  fi
}
usr1() {
  echo "mpirun.sh: USR1: asking every rank to commit the round in progress and exit 75" >&2
  kill -USR1 "$pid" 2>/dev/null || true
}
trap 'stop TERM' TERM
trap 'stop INT' INT
trap usr1 USR1
# pending_stop: whether mpirun has a TERM or INT pending (sent to it while blocked), from the
# shared-pending mask in /proc (SIGINT is bit 1, SIGTERM bit 14).
pending_stop() {
  local key value mask=""
  [ ${#block[@]} -gt 0 ] || return 1
  while read -r key value; do
    if [ "$key" = ShdPnd: ]; then mask=$value; break; fi
  done <"/proc/$pid/status" 2>/dev/null || return 1
  [ -n "$mask" ] && (( (16#$mask & 0x4002) != 0 ))
}
rc=0
while kill -0 "$pid" 2>/dev/null; do
  # A pending TERM or INT stays pending: it starts the stop once, and never counts as a second signal.
  if [ "$signals" = 0 ] && pending_stop; then stop "TERM or INT to mpirun ($pid)"; fi
  # `wait` returns when a trapped signal arrives, so the traps run at once; `sleep` alone would delay them.
  sleep 0.5 &
  wait $! 2>/dev/null || true
done
wait "$pid" && rc=0 || rc=$?
exit "$rc"
