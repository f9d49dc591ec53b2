#!/usr/bin/env bash
# The graceful stop under scripts/mpirun.sh (Open MPI 4.1), from the directions that used to lose
# the round in progress (docs/running.md, "Stopping a run"). A tiny 4-round run on 4 ranks, with
# rank 1 stalling round 2 (faults.stall_round), gets SIGTERM while round 2 is in progress:
#   a. to the mpirun process itself: round 2 commits, every rank exits 75, mpirun.sh returns 75,
#      rank 0 says so;
#   b. to every process of the job (mpirun.sh, mpirun and each rank, as a scheduler's kill does):
#      the same;
#   c. to mpirun while round 2 cannot end within the stop grace (PILOT_STOP_GRACE=2, a 600 s stall):
#      every rank exits 75 within a few seconds of the grace, rank 0 says that round 2 is lost and
#      round 1 is the last committed.
# Each run is then resumed (`pilot train --resume`, which drops the fault) and its last round must
# equal an uninterrupted run's bit for bit (scripts/studies/compare_rounds.py). About a minute on 2
# cores. Exit 0: passed. Environment: PILOT_BIN (default .build/release/pilot), PYTHON (with h5py;
# default /usr/bin/python3), KEEP=1 keeps the work directory.
set -euo pipefail
# A parent may have blocked or ignored the signals this test sends (a test runner does): start
# again with them unblocked and at their defaults, as from a shell.
if [ -z "${PILOT_TEST_SIGNALS_UNMASKED:-}" ]; then
  export PILOT_TEST_SIGNALS_UNMASKED=1
  exec perl -MPOSIX -e '$SIG{$_} = "DEFAULT" for qw(TERM INT HUP USR1 USR2);
                        sigprocmask(SIG_SETMASK, POSIX::SigSet->new) or die "sigprocmask: $!\n";
                        exec { $ARGV[0] } @ARGV or die "exec: $!\n"' -- bash "$0" "$@"
fi
cd "$(dirname "$0")/.."
REPO=$PWD
PYTHON=${PYTHON:-/usr/bin/python3}
PILOT=${PILOT_BIN:-$REPO/.build/release/pilot}
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
T0=$(date +%s)
say() { echo "[test_signals +$(( $(date +%s) - T0 ))s] $*"; }
fail() { say "FAIL: $*"; exit 1; }
[ -x "$PILOT" ] || fail "no pilot binary at $PILOT: swift build -c release --product pilot"
"$PYTHON" -c "import h5py, numpy" 2>/dev/null || fail "$PYTHON cannot import h5py and numpy (scripts/bootstrap.sh installs them)"

WORK=$(mktemp -d /tmp/pilot-signals-test.XXXXXX)
STARTED=()   # the mpirun.sh processes this script started, to clean up after a failure
cleanup() {
  local w m
  for w in "${STARTED[@]}"; do
    if kill -0 "$w" 2>/dev/null; then
      m=$(pgrep -P "$w" -x mpirun || true)
      kill -TERM "$w" 2>/dev/null; sleep 0.2; kill -TERM "$w" 2>/dev/null    # the second one aborts
      sleep 3
      [ -n "$m" ] && kill -KILL $(pgrep -P "$m") "$m" "$w" 2>/dev/null
    fi
  done
  if [ "${KEEP:-0}" = 1 ]; then say "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

"$PILOT" data generate --scenario vu --size tiny --seed 3 --out "$WORK/data" >/dev/null
"$PILOT" pretrain --data "$WORK/data" --out "$WORK/data/base.h5" --model-size micro --steps 4 --batch 8 --eval-test 0 >/dev/null
ROUNDS=4
"$PYTHON" scripts/derive_config.py configs/tiny/pilot.toml "$WORK/tiny.toml" \
  run.data="$WORK/data" run.base="$WORK/data/base.h5" run.seed=5 run.rounds=$ROUNDS \
  train.max_steps=2 eval.max_examples=6 eval.max_new_tokens=6 >/dev/null
"$PYTHON" scripts/derive_config.py "$WORK/tiny.toml" "$WORK/stall.toml" faults.stall_round=2 faults.stall_seconds=4 >/dev/null
"$PYTHON" scripts/derive_config.py "$WORK/tiny.toml" "$WORK/stuck.toml" faults.stall_round=2 faults.stall_seconds=600 >/dev/null

scripts/mpirun.sh -np 4 "$PILOT" train --config "$WORK/tiny.toml" --out "$WORK/ref" >"$WORK/ref.out" 2>&1 \
  || { tail -n 20 "$WORK/ref.out"; fail "the uninterrupted run failed"; }
say "the uninterrupted run finished its $ROUNDS rounds"

# stop_run NAME CONFIG TARGET: starts NAME under scripts/mpirun.sh (in its own session, as from a
# terminal), sends TERM to TARGET (mpirun | all) one second into round 2, and waits for the end.
# Sets RC and SECONDS_TO_EXIT (from the signal).
stop_run() {
  local name=$1 config=$2 target=$3 w m ranks t0 i
  setsid scripts/mpirun.sh -np 4 "$PILOT" train --config "$config" --out "$WORK/$name" >"$WORK/$name.out" 2>&1 &
  w=$!
  STARTED+=("$w")
  for i in $(seq 1200); do
    [ "$(cat "$WORK/$name/ckpt/latest" 2>/dev/null)" = round_001.h5 ] && break
    kill -0 "$w" 2>/dev/null || break
    sleep 0.05
  done
  [ "$(cat "$WORK/$name/ckpt/latest" 2>/dev/null)" = round_001.h5 ] || { tail -n 20 "$WORK/$name.out"; fail "$name: round 1 was never committed"; }
  sleep 1    # rank 1 stalls round 2: the signal lands in it
  m=$(pgrep -P "$w" -x mpirun) || fail "$name: no mpirun under scripts/mpirun.sh ($w)"
  ranks=$(pgrep -P "$m" | tr '\n' ' ')
  [ -n "$ranks" ] || fail "$name: mpirun ($m) has no ranks"
  t0=$(date +%s.%N)
  case $target in
    mpirun) kill -TERM "$m" ;;
    all) kill -TERM "$w" "$m" $ranks ;;
  esac
  RC=0
  for i in $(seq 1200); do kill -0 "$w" 2>/dev/null || break; sleep 0.05; done
  kill -0 "$w" 2>/dev/null && { tail -n 20 "$WORK/$name.out"; fail "$name: still running 60 s after TERM"; }
  wait "$w" || RC=$?
  SECONDS_TO_EXIT=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
}

# resume_matches NAME: resumes NAME (without --config: the run's own config, no faults) and compares
# its last round with the uninterrupted run's.
resume_matches() {
  local name=$1 rc=0
  scripts/mpirun.sh -np 4 "$PILOT" train --resume "$WORK/$1" >"$WORK/$1-resume.out" 2>&1 || rc=$?
  [ "$rc" = 0 ] || { tail -n 20 "$WORK/$1-resume.out"; fail "$name: the resume exited $rc"; }
  "$PYTHON" scripts/studies/compare_rounds.py "$WORK/ref" "$WORK/$name" $ROUNDS >"$WORK/$name-compare.txt" \
    || { tail -n 5 "$WORK/$name-compare.txt"; fail "$name: the resumed run differs from the uninterrupted one"; }
}

committed_line() { grep -o 'stop requested by SIG[A-Z0-9]*: round 2 is committed; every rank exits 75' "$WORK/$1.out"; }

# stop_committed NAME TARGET WHAT: TERM to TARGET in round 2 must commit round 2, exit 75 and resume bitwise
stop_committed() {
  stop_run "$1" "$WORK/stall.toml" "$2"
  [ "$RC" = 75 ] || { tail -n 30 "$WORK/$1.out"; fail "$1: TERM to $3: exit $RC, not 75"; }
  [ "$(cat "$WORK/$1/ckpt/latest")" = round_002.h5 ] || fail "$1: latest is $(cat "$WORK/$1/ckpt/latest"), not round 2"
  LINE=$(committed_line "$1") || { tail -n 30 "$WORK/$1.out"; fail "$1: rank 0 did not say that round 2 is committed"; }
  resume_matches "$1"
  say "ok $1: TERM to $3 in round 2: exit 75 after ${SECONDS_TO_EXIT} s, '$LINE'; resumed, bitwise equal"
}

# ---------------------------------------------------------------- a. TERM to mpirun
stop_committed a mpirun "mpirun"

# ---------------------------------------------------------------- b. TERM to every process
stop_committed b all "mpirun.sh, mpirun and every rank"

# ---------------------------------------------------------------- c. the grace runs out
export PILOT_STOP_GRACE=2
stop_run c "$WORK/stuck.toml" mpirun
unset PILOT_STOP_GRACE
[ "$RC" = 75 ] || { tail -n 30 "$WORK/c.out"; fail "c: exit $RC, not 75"; }
awk -v s="$SECONDS_TO_EXIT" 'BEGIN { exit !(s >= 2 && s < 12) }' || fail "c: exited ${SECONDS_TO_EXIT} s after TERM; the grace was 2 s"
[ "$(cat "$WORK/c/ckpt/latest")" = round_001.h5 ] || fail "c: latest is $(cat "$WORK/c/ckpt/latest"), not round 1"
LINE=$(grep -o 'stopped by SIG[A-Z0-9]* after the 2 s stop grace: round 2 was in progress and is not committed; round 1 is the last committed; every rank exits 75' "$WORK/c.out") \
  || { tail -n 30 "$WORK/c.out"; fail "c: rank 0 did not say which round survives"; }
resume_matches c
grep -q "resumed $WORK/c after round 1" "$WORK/c-resume.out" || fail "c: the resume did not start after round 1"
say "ok c: TERM to mpirun with round 2 stuck: exit 75 after ${SECONDS_TO_EXIT} s, '$LINE'; resumed from round 1, bitwise equal"
say "PASS (stop signals under mpirun)"
