#!/usr/bin/env bash
# The jobs/*.sbatch scripts on a real single-node Slurm cluster (scripts/slurm/slurm-up.sh: Debian's
# slurm 22.05 + munge, installed with apt-get if missing, no systemd; as root). About three minutes
# on 2 cores, most of it (e) waiting for a time limit. Checks:
#   0. jobs/pretrain.sbatch generates a tiny vu scenario and pretrains a micro base model (2 ranks);
#   a. sbatch --wait jobs/train.sbatch CONFIG RUN exits 0 with the last round committed, and a
#      second submission on the finished run exits 0 ("run already complete");
#   b. a second run gets `scancel -b -s USR1` once round 1 is committed: the job stops after
#      committing its round (exit 75), requeues itself, resumes and completes; its final round
#      equals (a)'s bit for bit (scripts/studies/compare_rounds.py: every dataset of the round file and of
#      every client file);
#   c. a two-element jobs/sweep.sbatch array (seeds 1 and 2, run.rounds=3 as an override) finishes
#      both runs, each with its own seed, and the two results differ;
#   d. with SmolLM2 imported (scripts/get_smollm2.sh): pretrain.sbatch --lm and train.sbatch with
#      model.lm (configs/tiny-smollm2, --ntasks=4) finish their 2 rounds;
#   e. one more run hits its time limit (--time=1) in round 2, which rank 1 stalls (faults.stall_*):
#      every process gets Slurm's TERM, the round cannot end within pilot's stop grace (KillWait 30 s
#      - 10 s), so pilot says that round 1 is the last committed and exits 75; the job requeues
#      itself because the TERM was the time limit's, resumes (without the fault) and completes,
#      bitwise equal to (a). This one takes 1.5 to 2.5 minutes: Slurm checks limits every 30 s.
# Exit 0: all passed; 77: skipped (not root, or Slurm cannot be installed or started here; the SKIP
# line says which, and why); anything else: failed.
# Environment: PILOT_BIN (default .build/release/pilot), SLURM_LAB (a folder with another
# slurm-up.sh and slurm-down.sh; default scripts/slurm), SLURM_LAB_DIR (the cluster's files; default
# /tmp/slurm-lab), PYTHON (with h5py; default /usr/bin/python3), KEEP=1 keeps the work directory.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
LAB=${SLURM_LAB:-$REPO/scripts/slurm}
PYTHON=${PYTHON:-/usr/bin/python3}
export PILOT_BIN=${PILOT_BIN:-$REPO/.build/release/pilot}
T0=$(date +%s)
say() { echo "[test_slurm +$(( $(date +%s) - T0 ))s] $*"; }
fail() { say "FAIL: $*"; exit 1; }
skip() { say "SKIP: $*"; exit 77; }

[ "$(id -u)" = 0 ] || skip "the lab cluster runs its daemons as root; run as root"
[ -f "$LAB/slurm-up.sh" ] || fail "no $LAB/slurm-up.sh (SLURM_LAB must name a folder with slurm-up.sh and slurm-down.sh)"
[ -x "$PILOT_BIN" ] || fail "no pilot binary at $PILOT_BIN: swift build -c release --product pilot"
"$PYTHON" -c "import h5py, numpy" 2>/dev/null || fail "$PYTHON cannot import h5py and numpy (scripts/bootstrap.sh installs them)"

WORK=$(mktemp -d /tmp/pilot-slurm-test.XXXXXX)
STARTED=0
cleanup() {
  if [ "$STARTED" = 1 ]; then bash "$LAB/slurm-down.sh" --purge >/dev/null 2>&1 || true; fi
  if [ "${KEEP:-0}" = 1 ]; then say "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

# ---------------------------------------------------------------- cluster
# Slurm we did not start (already up) is left running; one we start is stopped and purged.
# scripts/slurm/slurm-up.sh exits 3 when Slurm cannot be installed and 4 when its daemons cannot be
# started here; both are skips. Another SLURM_LAB's script may exit 1 for either: without Slurm's
# commands afterwards, that too is "cannot be installed".
up_rc=0
up=$(bash "$LAB/slurm-up.sh" 2>&1) || up_rc=$?
if [ "$up_rc" != 0 ]; then
  echo "$up" | tail -n 30
  case $up_rc in
    2) skip "$LAB/slurm-up.sh needs root" ;;
    3) skip "Slurm is not installed and could not be installed here (apt-get failed: no network or no package source; see the lines above)" ;;
    4) skip "Slurm is installed but its daemons could not be started here (see the log lines above)" ;;
  esac
  if ! command -v sbatch >/dev/null || ! command -v slurmctld >/dev/null; then
    skip "Slurm is not installed and could not be installed here (no network or no packages)"
  fi
  fail "$LAB/slurm-up.sh exited $up_rc"
fi
case "$up" in *"already up"*) ;; *) STARTED=1 ;; esac
. "${SLURM_LAB_DIR:-/tmp/slurm-lab}/env.sh"
say "cluster up: $(sinfo -h -o '%P %T cpus=%c')"

# submit [SBATCH ARGS...]: sbatch --wait with a time limit per job and a log under $WORK;
# prints sbatch's exit status (the job's) and never makes the script exit.
submit() { local rc=0; timeout 300 sbatch --wait --time=4 "$@" >/dev/null || rc=$?; echo "$rc"; }
# The run's newest committed round file.
latest() { cat "$1/ckpt/latest" 2>/dev/null || echo none; }
show_log() { echo "---- $1"; tail -n 40 "$1" 2>/dev/null || true; }

# ---------------------------------------------------------------- 0. pretrain.sbatch
# Task version 2 (PILOT_TASK_VERSION), so that the variable is shown to reach pilot data generate.
rc=$(PILOT_DATA_SEED=3 PILOT_TASK_VERSION=2 submit -o "$WORK/pretrain.out" jobs/pretrain.sbatch vu "$WORK/data" tiny \
       --model-size micro --steps 4 --batch 8 --eval-test 0)
[ "$rc" = 0 ] && [ -f "$WORK/data/base.h5" ] || { show_log "$WORK/pretrain.out"; fail "pretrain.sbatch: exit $rc"; }
grep -q "on 2 ranks" "$WORK/pretrain.out" || { show_log "$WORK/pretrain.out"; fail "pretrain did not run on 2 ranks"; }
grep -q '"task_version": 2' "$WORK/data/scenario.json" || { cat "$WORK/data/scenario.json"; fail "PILOT_TASK_VERSION=2 did not reach pilot data generate"; }
say "ok 0: pretrain.sbatch wrote data/ (task version 2) and base.h5 on 2 ranks"

# The tiny config, derived from configs/tiny with the fixture's paths and small settings. Eight
# rounds of about 0.6 s leave several rounds between the first commit and the end, so the signal
# of (b) lands mid-run.
"$PYTHON" scripts/derive_config.py configs/tiny/pilot.toml "$WORK/cfg/tiny.toml" \
  run.data="$WORK/data" run.base="$WORK/data/base.h5" run.seed=5 run.rounds=8 \
  train.max_steps=2 eval.max_examples=6 eval.max_new_tokens=6
ROUNDS=8

# ---------------------------------------------------------------- a. train.sbatch, uninterrupted
A=$WORK/runs/a
rc=$(submit -o "$WORK/a.out" jobs/train.sbatch "$WORK/cfg/tiny.toml" "$A")
[ "$rc" = 0 ] || { show_log "$WORK/a.out"; fail "a: train.sbatch exited $rc"; }
[ "$(latest "$A")" = "$(printf 'round_%03d.h5' $ROUNDS)" ] || fail "a: latest is $(latest "$A")"
"$PILOT_BIN" inspect --verify "$A/ckpt/$(latest "$A")" >/dev/null || fail "a: checksum verification failed"
rc=$(submit -o "$WORK/a2.out" jobs/train.sbatch "$WORK/cfg/tiny.toml" "$A")
[ "$rc" = 0 ] && grep -q "run already complete" "$WORK/a2.out" || { show_log "$WORK/a2.out"; fail "a: resubmitting a finished run: exit $rc"; }
say "ok a: train.sbatch finished round $ROUNDS; resubmitted, it says the run is complete and exits 0"

# ---------------------------------------------------------------- b. USR1 mid-run, requeue, resume
B=$WORK/runs/b
timeout 300 sbatch --wait --time=4 --parsable -o "$WORK/b.out" jobs/train.sbatch "$WORK/cfg/tiny.toml" "$B" >"$WORK/b.id" &
SB=$!
for _ in $(seq 1200); do [ -f "$B/ckpt/round_001.h5" ] || ! kill -0 $SB 2>/dev/null && break; sleep 0.1; done
[ -f "$B/ckpt/round_001.h5" ] || { show_log "$WORK/b.out"; fail "b: round 1 was never committed"; }
JOB=$(cat "$WORK/b.id")
scancel -b -s USR1 "$JOB"
say "b: job $JOB has committed round 1; sent USR1 to its batch script"
rc=0; wait $SB || rc=$?
[ "$rc" = 0 ] || { show_log "$WORK/b.out"; show_log "$B/jobs.log"; fail "b: job exited $rc"; }
cat "$B/jobs.log"
grep -q "restart 0: exit 75 after USR1" "$B/jobs.log" || fail "b: the first run did not stop with 75 after USR1 (did the signal arrive after the last round?)"
grep -q "requeued" "$B/jobs.log" || fail "b: the job did not requeue itself"
grep -q "restart 1: start --resume" "$B/jobs.log" || fail "b: the requeued run did not resume"
grep -q "restart 1: exit 0" "$B/jobs.log" || fail "b: the resumed run did not finish"
grep -q "resumed $B after round" "$WORK/b.out" || fail "b: pilot did not report the resume"
[ "$(latest "$B")" = "$(printf 'round_%03d.h5' $ROUNDS)" ] || fail "b: latest is $(latest "$B")"
"$PYTHON" scripts/studies/compare_rounds.py "$A" "$B" $ROUNDS || fail "b: the resumed run differs from (a)"
say "ok b: stopped by USR1 ($(grep -o 'stop requested by SIG[A-Z0-9]*: round [0-9]* is committed' "$WORK/b.out")), requeued, resumed, bitwise equal to (a)"

# ---------------------------------------------------------------- c. sweep.sbatch array
printf '# two seeds of the test config, three rounds each\n%s 1 run.rounds=3\n\n%s 2 run.rounds=3\n' \
  "$WORK/cfg/tiny.toml" "$WORK/cfg/tiny.toml" >"$WORK/sweep.txt"
rc=$(submit --array=0-1 -o "$WORK/sweep-%a.out" jobs/sweep.sbatch "$WORK/sweep.txt" "$WORK/sweep")
[ "$rc" = 0 ] || { show_log "$WORK/sweep-0.out"; show_log "$WORK/sweep-1.out"; fail "c: sweep array exited $rc"; }
for seed in 1 2; do
  R=$WORK/sweep/cfg-tiny-s$seed-run.rounds=3
  [ "$(latest "$R")" = round_003.h5 ] || { ls "$WORK/sweep"; fail "c: $R: latest is $(latest "$R")"; }
  grep -qx "seed = $seed" "$R/config.toml" && grep -qx "rounds = 3" "$R/config.toml" \
    || fail "c: $R/config.toml does not have seed $seed and 3 rounds"
done
if "$PYTHON" scripts/studies/compare_rounds.py "$WORK/sweep/cfg-tiny-s1-run.rounds=3" "$WORK/sweep/cfg-tiny-s2-run.rounds=3" 3 >/dev/null; then
  fail "c: seeds 1 and 2 gave identical results"
fi
say "ok c: sweep array of 2 finished both runs (seeds 1 and 2, 3 rounds each), with different results"
# ---------------------------------------------------------------- d. the same jobs on SmolLM2 (model.lm)
# pretrain.sbatch with --lm (LLaVA stage 1 over the frozen LM) and train.sbatch on configs/tiny-smollm2,
# 1 server + 3 clients; skipped when scripts/get_smollm2.sh has not imported the model.
LM=${PILOT_SMOLLM2:-$REPO/models/smollm2-135m-instruct}
if [ -f "$LM/config.json" ]; then
  "$PILOT_BIN" data generate --scenario vu --size tiny --clients-per-task 1 --per-client 8 --test-size 4 --seed 3 \
    --out "$WORK/data-lm" >/dev/null
  rc=$(submit -o "$WORK/pretrain-lm.out" jobs/pretrain.sbatch vu "$WORK/data-lm" tiny --lm "$LM" --steps 2 --batch 2 --text-length 64)
  [ "$rc" = 0 ] && [ -f "$WORK/data-lm/base.h5" ] || { show_log "$WORK/pretrain-lm.out"; fail "d: pretrain.sbatch --lm: exit $rc"; }
  grep -q "on the LM at $LM" "$WORK/pretrain-lm.out" || { show_log "$WORK/pretrain-lm.out"; fail "d: pretrain did not run on the LM"; }
  "$PYTHON" scripts/derive_config.py configs/tiny-smollm2/pilot.toml "$WORK/cfg/smollm2.toml" \
    run.data="$WORK/data-lm" run.base="$WORK/data-lm/base.h5" model.lm="$LM"
  L=$WORK/runs/smollm2
  rc=$(submit --ntasks=4 -o "$WORK/smollm2.out" jobs/train.sbatch "$WORK/cfg/smollm2.toml" "$L")
  [ "$rc" = 0 ] || { show_log "$WORK/smollm2.out"; fail "d: train.sbatch on SmolLM2 exited $rc"; }
  [ "$(latest "$L")" = round_002.h5 ] || { show_log "$WORK/smollm2.out"; fail "d: latest is $(latest "$L")"; }
  "$PILOT_BIN" inspect --verify "$L/ckpt/round_002.h5" >/dev/null || fail "d: checksum verification failed"
  say "ok d: pretrain.sbatch --lm and train.sbatch (4 tasks) on SmolLM2 finished 2 Pilot rounds"
else
  say "skip d: no SmolLM2 at $LM (scripts/get_smollm2.sh)"
fi
# ---------------------------------------------------------------- e. the time limit in round 2
# --time=1 and no early warning (--signal=B:URG@1 replaces train.sbatch's USR1@120, which a 1-minute
# job would get at once; the batch shell ignores URG), so the only stop is the TERM that Slurm sends
# to every process of the job at the limit (60 to 90 s after the start). Rank 1 stalls round 2 for
# 600 s (faults.* are not part of the run: a resume may drop them), so the round cannot commit
# within the stop grace: rank 0 says round 1 is the last committed and every rank exits 75. Once
# round 1 is committed the config file loses its [faults], so the requeued run resumes without them.
E=$WORK/runs/e
"$PYTHON" scripts/derive_config.py "$WORK/cfg/tiny.toml" "$WORK/cfg/stall.toml" faults.stall_round=2 faults.stall_seconds=600 >/dev/null
JOB=$(sbatch --parsable --time=1 --signal=B:URG@1 -o "$WORK/e.out" jobs/train.sbatch "$WORK/cfg/stall.toml" "$E")
for _ in $(seq 1200); do [ -f "$E/ckpt/round_001.h5" ] && break; sleep 0.1; done
[ -f "$E/ckpt/round_001.h5" ] || { show_log "$WORK/e.out"; fail "e: round 1 was never committed"; }
cp "$WORK/cfg/tiny.toml" "$WORK/cfg/stall.tmp" && mv "$WORK/cfg/stall.tmp" "$WORK/cfg/stall.toml"
say "e: job $JOB has committed round 1 and stalls in round 2; waiting for its time limit (1 min, checked every 30 s)"
# Not sbatch --wait: it returns as soon as the job times out, while pilot still has its grace and
# the job has yet to requeue. Wait for the requeued run's end, or for the job to be gone for good.
gone=0
for _ in $(seq 3000); do
  grep -q "restart 1: exit" "$E/jobs.log" 2>/dev/null && break
  if [ -z "$(squeue -h -j "$JOB" 2>/dev/null)" ]; then gone=$((gone + 1)); [ $gone -ge 50 ] && break; else gone=0; fi
  sleep 0.1
done
for _ in $(seq 100); do [ -z "$(squeue -h -j "$JOB" 2>/dev/null)" ] && break; sleep 0.1; done
[ -f "$E/jobs.log" ] || { show_log "$WORK/e.out"; fail "e: no jobs.log"; }
cat "$E/jobs.log"
grep -q "restart 0: exit 75 after TERM (time limit)" "$E/jobs.log" || { show_log "$WORK/e.out"; fail "e: the first run did not exit 75 after the time limit's TERM"; }
grep -q "requeued" "$E/jobs.log" || fail "e: the job did not requeue itself"
grep -q "restart 1: start --resume" "$E/jobs.log" || fail "e: the requeued run did not resume"
grep -q "restart 1: exit 0" "$E/jobs.log" || fail "e: the resumed run did not finish"
STOPPED=$(grep -o 'stopped by SIG[A-Z0-9]* after the [0-9.]* s stop grace: round 2 was in progress and is not committed; round 1 is the last committed' "$WORK/e.out") \
  || { show_log "$WORK/e.out"; fail "e: pilot did not say that round 2 was lost and round 1 survives"; }
grep -q "resumed $E after round 1" "$WORK/e.out" || { show_log "$WORK/e.out"; fail "e: the requeued run did not resume after round 1"; }
[ "$(latest "$E")" = "$(printf 'round_%03d.h5' $ROUNDS)" ] || fail "e: latest is $(latest "$E")"
"$PYTHON" scripts/studies/compare_rounds.py "$A" "$E" $ROUNDS || fail "e: the resumed run differs from (a)"
say "ok e: time limit in round 2: '$STOPPED'; exit 75, requeued, resumed, bitwise equal to (a)"

say "PASS (slurm job scripts)"
