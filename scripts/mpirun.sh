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
exec mpirun "${args[@]}" "$@"
