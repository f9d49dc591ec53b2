# jobs/lib.sh: what the jobs/*.sbatch scripts share (bash; source it, do not run it).
#
#   pilot_env                   find the repository and the pilot binary, set the environment MPI and HDF5 need
#   pilot_step CMD...           run a job step in the background and forward USR1/TERM to it (see below)
#   pilot_train CONFIG RUN_DIR  start or resume one federated run, requeue the job when it was stopped
#
# Signals (docs/running.md, "Stopping a run", has what Slurm 22.05 and srun do with each).
#  - USR1 reaches the batch shell only (`--signal=B:USR1@N` before the time limit, `scancel -b -s
#    USR1 JOB`). bash runs a trap only when the command it waits for returns, so the step runs in the
#    background and the trap passes USR1 on to srun, which forwards it to every task: pilot finishes
#    the round in progress, commits it and exits 75, and the job requeues itself (`scontrol
#    requeue`, when it was submitted with --requeue); the next run resumes from RUN_DIR/ckpt/latest.
#  - TERM is what Slurm sends at the time limit, on `scancel JOB` and on preemption: to every
#    process of the job (the tasks, srun and this shell), with SIGKILL KillWait seconds later (30 s
#    unless slurm.conf says otherwise). The tasks get it directly; srun, which kills the step at once
#    when TERM comes on its own, leaves the tasks their KillWait when the whole job is ending. The
#    trap passes TERM (and INT) on as USR2, which srun forwards and pilot treats as TERM. pilot
#    commits the round in progress if it ends within its stop grace, PILOT_STOP_GRACE, which
#    pilot_env sets to KillWait - 10 s (half of KillWait below 20 s), and exits 75 at the end of the
#    grace either way, saying which round is the last committed. After a time limit the job
#    requeues itself; after `scancel` or preemption it does not (a preempting Slurm with
#    PreemptMode=REQUEUE requeues it itself).

pilot_log() { echo "[$(date '+%F %T')] job ${SLURM_JOB_ID:-none}: $*"; }

# The repository is the directory the job was submitted from (sbatch runs a copy of the script,
# so its own path says nothing), or PILOT_REPO.
pilot_env() {
  REPO=${PILOT_REPO:-${SLURM_SUBMIT_DIR:-$PWD}}
  PILOT=${PILOT_BIN:-$REPO/.build/release/pilot}
  if [ ! -x "$PILOT" ]; then
    echo "pilot binary not found at $PILOT: build it (swift build -c release --product pilot) and submit from the repository root, or set PILOT_BIN" >&2
    exit 2
  fi
  # HDF5's file locks fail or hang on many network file systems (NFS, Lustre without flock).
  export HDF5_USE_FILE_LOCKING=FALSE
  # Ranks that wait in MPI yield the core instead of busy-polling (vital when oversubscribed).
  export OMPI_MCA_mpi_yield_when_idle=1
  # How long pilot may take to stop after TERM: it must exit, and this script requeue the job,
  # before Slurm's SIGKILL comes KillWait seconds after the TERM.
  if [ -z "${PILOT_STOP_GRACE:-}" ]; then
    local killwait
    killwait=$(scontrol show config 2>/dev/null | awk '$1 == "KillWait" { print $3 }')
    case $killwait in ''|*[!0-9]*) killwait=30 ;; esac    # Slurm's default
    if [ "$killwait" -ge 20 ]; then PILOT_STOP_GRACE=$((killwait - 10))
    elif [ "$killwait" -ge 2 ]; then PILOT_STOP_GRACE=$((killwait / 2))
    else PILOT_STOP_GRACE=1; fi
    export PILOT_STOP_GRACE
  fi
  # One BLAS thread per CPU Slurm gave each task; one when tasks outnumber the node's cores.
  local tasks=${SLURM_NTASKS:-1} cores
  cores=$(nproc 2>/dev/null || echo 1)
  if [ -z "${OPENBLAS_NUM_THREADS:-}" ]; then
    if [ "$tasks" -gt "$cores" ]; then export OPENBLAS_NUM_THREADS=1
    else export OPENBLAS_NUM_THREADS=${SLURM_CPUS_PER_TASK:-1}; fi
  fi
}

# pilot_step CMD...: runs CMD in the background, passes USR1 on to it as USR1 and TERM or INT as
# USR2 (srun forwards both to every task; it would kill the step on TERM), waits until it has exited
# and returns its status. PILOT_SIGNAL holds the last signal received (empty if none). The traps are
# set before the step starts: a signal that comes first is passed on as soon as the step exists.
PILOT_SIGNAL=""
PILOT_STEP_PID=""
PILOT_STEP_PENDING=""
_pilot_forward() {   # _pilot_forward RECEIVED SENT
  PILOT_SIGNAL=$1
  if [ "$2" = USR1 ]; then pilot_log "$1: asking the step to commit the round in progress and stop"
  else pilot_log "$1: asking the step to commit the round in progress within ${PILOT_STOP_GRACE:-20} s and stop"; fi
  if [ -n "$PILOT_STEP_PID" ]; then kill -"$2" "$PILOT_STEP_PID" 2>/dev/null || true
  else PILOT_STEP_PENDING=$2; fi
}
pilot_step() {
  local rc
  PILOT_STEP_PID=""; PILOT_STEP_PENDING=""
  trap '_pilot_forward USR1 USR1' USR1
  trap '_pilot_forward TERM USR2' TERM
  trap '_pilot_forward INT USR2' INT
  "$@" &
  PILOT_STEP_PID=$!
  if [ -n "$PILOT_STEP_PENDING" ]; then kill -"$PILOT_STEP_PENDING" "$PILOT_STEP_PID" 2>/dev/null || true; fi
  while :; do
    rc=0; wait "$PILOT_STEP_PID" || rc=$?
    # wait returns >128 when a trapped signal interrupts it; the step may still be running.
    if [ "$rc" -le 128 ]; then break; fi
    if ! kill -0 "$PILOT_STEP_PID" 2>/dev/null; then
      # It exited meanwhile: collect its own status unless that wait already reported it.
      local rc2=0; wait "$PILOT_STEP_PID" 2>/dev/null || rc2=$?
      [ "$rc2" -ne 127 ] && rc=$rc2
      break
    fi
  done
  trap - USR1 TERM INT
  PILOT_STEP_PID=""
  return "$rc"
}

# pilot_timed_out: whether Slurm is ending this job for its time limit (the TERM of a time limit
# and of `scancel` look alike; the job's Reason tells them apart).
pilot_timed_out() {
  [ -n "${SLURM_JOB_ID:-}" ] && scontrol show job "$SLURM_JOB_ID" 2>/dev/null | grep -qE 'JobState=TIMEOUT|Reason=TimeLimit'
}

# pilot_train CONFIG RUN_DIR: the federated run on every task of the allocation (2 to 1 + K tasks).
# Exits the job: 0 when the run is complete, 75 when it was stopped (and requeued if possible),
# otherwise pilot's status.
pilot_train() {
  local config=$1 run=$2 rc args
  [ -f "$config" ] || { echo "config file '$config' not found (relative paths are relative to $PWD)" >&2; exit 2; }
  if [ -f "$run/ckpt/latest" ]; then
    # Resume from the newest committed round; pilot refuses if CONFIG differs from the run's.
    args=(--resume "$run" --config "$config")
    pilot_log "resuming $run from $(cat "$run/ckpt/latest") (restart ${SLURM_RESTART_COUNT:-0})"
  else
    args=(--config "$config" --out "$run")
    pilot_log "starting $run with $config"
  fi
  mkdir -p "$run"
  echo "$(date '+%F %T') job ${SLURM_JOB_ID:-none} restart ${SLURM_RESTART_COUNT:-0}: start ${args[*]}" >>"$run/jobs.log"
  rc=0
  pilot_step srun --mpi=pmix --kill-on-bad-exit=1 "$PILOT" train "${args[@]}" || rc=$?
  # TERM (or INT) is the time limit's, or a cancel's or preemption's; only the first requeues.
  local requeue=1
  case $PILOT_SIGNAL in
    TERM|INT) if pilot_timed_out; then PILOT_SIGNAL="$PILOT_SIGNAL (time limit)"; else requeue=0; fi ;;
  esac
  echo "$(date '+%F %T') job ${SLURM_JOB_ID:-none} restart ${SLURM_RESTART_COUNT:-0}: exit $rc${PILOT_SIGNAL:+ after $PILOT_SIGNAL}" >>"$run/jobs.log"
  if [ "$rc" -eq 75 ]; then
    pilot_log "stopped after ${PILOT_SIGNAL:-a signal to the tasks}; the last committed round is $(cat "$run/ckpt/latest" 2>/dev/null || echo 'none')"
    if [ "$requeue" = 0 ]; then
      pilot_log "$PILOT_SIGNAL came from scancel or preemption, not the time limit: not requeueing"
    elif [ "${PILOT_REQUEUE:-1}" != 0 ] && [ -n "${SLURM_JOB_ID:-}" ] \
         && scontrol show job "$SLURM_JOB_ID" 2>/dev/null | grep -q 'Requeue=1'; then
      pilot_log "requeueing; the next run resumes from $run/ckpt/latest"
      echo "$(date '+%F %T') job $SLURM_JOB_ID: requeued" >>"$run/jobs.log"
      scontrol requeue "$SLURM_JOB_ID"
    else
      pilot_log "not requeueable: resubmit the same command to resume"
    fi
  fi
  exit "$rc"
}

# pilot_sweep_line LIST INDEX: prints the INDEX-th run line (0-based) of a sweep list, skipping
# blank lines and # comments. A line is `CONFIG SEED [section.key=value ...]`.
pilot_sweep_line() {
  local list=$1 index=$2 line
  [ -f "$list" ] || { echo "sweep list '$list' not found" >&2; return 2; }
  line=$(sed -e 's/#.*//' -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//' "$list" | grep -v '^$' | sed -n "$((index + 1))p")
  [ -n "$line" ] || { echo "sweep list '$list' has no run line $index (lines count from 0)" >&2; return 2; }
  echo "$line"
}

# pilot_run_name CONFIG SEED [OVERRIDES...]: a run directory name that says what the run is,
# e.g. configs/vu/pilot.toml 2 pilot.ata=false -> vu-pilot-s2-pilot.ata=false
pilot_run_name() {
  local config=$1 seed=$2 name
  shift 2
  name="$(basename "$(dirname "$config")")-$(basename "$config" .toml)-s$seed"
  for o in "$@"; do name+="-$o"; done
  # Only characters that are safe in a path and a shell word.
  echo "$name" | tr -c 'A-Za-z0-9._=+\n-' '_'
}
