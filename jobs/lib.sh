# jobs/lib.sh: what the jobs/*.sbatch scripts share (bash; source it, do not run it).
#
#   pilot_env                   find the repository and the pilot binary, set the environment MPI and HDF5 need
#   pilot_step CMD...           run a job step in the background and forward USR1/TERM to it (see below)
#   pilot_train CONFIG RUN_DIR  start or resume one federated run, requeue the job when it was stopped
#
# Signals. Slurm sends USR1 to the batch shell only (`--signal=B:USR1@N` before the time limit,
# `scancel -b -s USR1 JOB` by hand); bash runs a trap only when the command it waits for returns,
# so the step runs in the background and the trap passes USR1 on to srun, which forwards it to
# every task. pilot then finishes the current round, commits its checkpoint and exits 75.
# On 75 after USR1 the job requeues itself (`scontrol requeue`, when it was submitted with
# --requeue) and the next run resumes from RUN_DIR/ckpt/latest. TERM is what Slurm sends when it
# cancels or preempts a job (to every process of it, srun included, and KILL follows after
# KillWait); the trap passes it on as USR1 but never requeues (a preempting Slurm requeues the job
# itself if it is configured to).

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
  # One BLAS thread per CPU Slurm gave each task; one when tasks outnumber the node's cores.
  local tasks=${SLURM_NTASKS:-1} cores
  cores=$(nproc 2>/dev/null || echo 1)
  if [ -z "${OPENBLAS_NUM_THREADS:-}" ]; then
    if [ "$tasks" -gt "$cores" ]; then export OPENBLAS_NUM_THREADS=1
    else export OPENBLAS_NUM_THREADS=${SLURM_CPUS_PER_TASK:-1}; fi
  fi
}

# pilot_step CMD...: runs CMD in the background, forwards USR1 and TERM to it, waits until it has
# exited and returns its status. PILOT_SIGNAL holds the last signal received (empty if none).
PILOT_SIGNAL=""
pilot_step() {
  local pid rc
  "$@" &
  pid=$!
  # srun passes USR1 on to every task of the step; pilot treats USR1 and TERM alike. srun answers
  # TERM by killing the step (SIGKILL to the tasks), so TERM is passed on as USR1 too.
  trap "PILOT_SIGNAL=USR1; pilot_log 'USR1: asking the step to commit its round and stop'; kill -USR1 $pid 2>/dev/null" USR1
  trap "PILOT_SIGNAL=TERM; pilot_log 'TERM: asking the step to commit its round and stop'; kill -USR1 $pid 2>/dev/null" TERM
  trap "PILOT_SIGNAL=INT; pilot_log 'INT: asking the step to commit its round and stop'; kill -USR1 $pid 2>/dev/null" INT
  while :; do
    rc=0; wait "$pid" || rc=$?
    # wait returns >128 when a trapped signal interrupts it; the step may still be running.
    if [ "$rc" -le 128 ]; then break; fi
    if ! kill -0 "$pid" 2>/dev/null; then
      # It exited meanwhile: collect its own status unless that wait already reported it.
      local rc2=0; wait "$pid" 2>/dev/null || rc2=$?
      [ "$rc2" -ne 127 ] && rc=$rc2
      break
    fi
  done
  trap - USR1 TERM INT
  return "$rc"
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
  echo "$(date '+%F %T') job ${SLURM_JOB_ID:-none} restart ${SLURM_RESTART_COUNT:-0}: exit $rc${PILOT_SIGNAL:+ after $PILOT_SIGNAL}" >>"$run/jobs.log"
  if [ "$rc" -eq 75 ]; then
    pilot_log "stopped after committing $(cat "$run/ckpt/latest" 2>/dev/null)"
    if [ "$PILOT_SIGNAL" = TERM ]; then
      pilot_log "TERM came from Slurm (cancel or preemption): not requeueing"
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
