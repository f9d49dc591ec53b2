#!/usr/bin/env bash
# The checks `scripts/testcluster.sh test` runs on the 3-host test cluster (scripts/testcluster.sh up
# first). One line per check, "PASS name: what was seen" or "FAIL name: why"; exits 1 if any failed.
#   selftest      `pilot selftest` over the 3 hosts (7 ranks: 3 on tc-h0, 2 on tc-h1, 2 on tc-h2)
#   locality      each host's scratch holds only its own clients' shards; rank 0 opens none
#   bitwise       Pilot, 9 clients on 6 client ranks over 3 hosts, 3 rounds: every round's checkpoint
#                 bit for bit equal to the same run on one host (scripts/studies/compare_rounds.py)
#   bytes         the bytes each client and the server sent and received per round (metrics.h5) equal
#                 the one-host run's
#   node-split    pilot saw 3 nodes (its node split, as the shared base uses it)
#   kill-host     kill -9 of every process on tc-h2 in round 2: every rank exits within 60 s; the resume
#                 (`pilot train --resume` on the cluster) ends bitwise equal to the one-host run
#   missing-shard a host whose scratch lacks one of its clients' shards: the error names the client,
#                 the rank and the host, and every rank exits within 60 s
#   other-build   pilot installed on each host's scratch, tc-h2's a different build (its build ID
#                 changed): the error names the hosts and ranks of each build; every rank exits within 60 s
#   other-base    the base checkpoint copied to each host's scratch, tc-h2's a different one: the same
#   one-base      (with SmolLM2-135M imported at models/smollm2-135m-instruct or $PILOT_SMOLLM2) FedAvg on
#                 the LM, 9 clients: each host prepares its own copy of the LM in its node-local
#                 model.weights_cache, and each host's summed PSS is below the run with model.share_base = false
#                 by most of a copy of the LM for each client rank beyond the first
#   slurm         (where Slurm is installed) slurmctld on tc-h0 and a slurmd per host: jobs/train.sbatch
#                 with --nodes=3 --ntasks-per-node=3 on the node-local data, stopped by USR1 in round 2, requeued
#                 by itself, resumed: its last round bit for bit equal to the one-host run
#   no-run-dir    tc-h2 does not mount the shared directory that holds the run directory: the error
#                 names the ranks and the host; every rank exits within 60 s
# Environment: PILOT_BIN (default .build/release/pilot), PYTHON (with h5py; default /usr/bin/python3),
# PILOT_TESTCLUSTER_STATE (as scripts/testcluster.sh).
set -uo pipefail
# A parent may have ignored or blocked the signals this script sends (a test runner does, and ignored
# signals are inherited): start again with them at their defaults, as from a shell.
if [ -z "${PILOT_TESTCLUSTER_UNMASKED:-}" ]; then
  export PILOT_TESTCLUSTER_UNMASKED=1
  exec perl -MPOSIX -e '$SIG{$_} = "DEFAULT" for qw(TERM INT HUP USR1 USR2);
                        sigprocmask(SIG_SETMASK, POSIX::SigSet->new) or die "sigprocmask: $!\n";
                        exec { $ARGV[0] } @ARGV or die "exec: $!\n"' -- bash "$0" "$@"
fi
cd "$(dirname "$0")/.."
REPO=$PWD
STATE=${PILOT_TESTCLUSTER_STATE:-/tmp/pilot-testcluster}
PYTHON=${PYTHON:-/usr/bin/python3}
PILOT=${PILOT_BIN:-$REPO/.build/release/pilot}
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
T0=$(date +%s)
FAILED=0
pass() { echo "PASS $1: $2 (+$(( $(date +%s) - T0 )) s)"; }
fail() { echo "FAIL $1: $2 (+$(( $(date +%s) - T0 )) s)"; FAILED=1; }
tc() { "$REPO/scripts/testcluster.sh" "$@"; }
[ -x "$PILOT" ] || { echo "FAIL setup: no pilot binary at $PILOT: swift build -c release --product pilot"; exit 1; }
[ -d "$STATE/hosts/tc-h0/scratch" ] || { echo "FAIL setup: the cluster is not up: scripts/testcluster.sh up"; exit 1; }
SHARED=$STATE/shared            # the shared file system: the base, the configs and the run directories
WORK=$SHARED/work
rm -rf "${SHARED:?}"/*
mkdir -p "$WORK"

# ---------------------------------------------------------------- selftest
if tc mpirun -np 7 "$PILOT" selftest >"$WORK/selftest.out" 2>&1; then
  layout=$(grep -o 'on [0-9]* hosts ([^)]*)' "$WORK/selftest.out")
  summary=$(grep -o 'selftest: [0-9]* passed, [0-9]* failed' "$WORK/selftest.out")
  [ "$layout" = "on 3 hosts (tc-h0: 3, tc-h1: 2, tc-h2: 2)" ] && pass selftest "$summary, world of 7 ranks $layout" \
    || fail selftest "$summary, but the ranks ran ${layout:-on an unknown layout}, not 3, 2 and 2 on tc-h0, tc-h1 and tc-h2"
else
  fail selftest "exit $?: $(tail -n 3 "$WORK/selftest.out" | tr '\n' ' ')"
fi

# ---------------------------------------------------------------- the data, on each host's scratch
"$PILOT" data generate --scenario vu --size tiny --seed 3 --out "$WORK/data" >/dev/null
"$PILOT" pretrain --data "$WORK/data" --out "$SHARED/base.h5" --model-size micro --steps 4 --batch 8 --eval-test 0 >/dev/null
# clients 0-3 on ranks 1-2 (tc-h0), 4-6 on ranks 3-4 (tc-h1), 7-8 on ranks 5-6 (tc-h2): Placement's blocks for 9 over 6
declare -A CLIENTS=([tc-h0]="0 1 2 3" [tc-h1]="4 5 6" [tc-h2]="7 8")
stage() {   # stage HOST: the scenario's manifest and test splits, and only HOST's clients' shards
  local h=$1 dir=$STATE/hosts/$1/scratch/vu k f
  rm -rf "$dir"; mkdir -p "$dir/clients"
  for f in "$WORK/data"/*; do [ "$(basename "$f")" = clients ] || cp -r "$f" "$dir/"; done
  for k in ${CLIENTS[$h]}; do cp "$WORK/data/clients/client-$(printf %02d "$k").h5" "$dir/clients/"; done
}
for h in tc-h0 tc-h1 tc-h2; do stage "$h"; done
ROUNDS=3
CFG=$SHARED/pilot.toml
"$PYTHON" scripts/derive_config.py configs/tiny/pilot.toml "$CFG" \
  run.data="$STATE/scratch/vu" run.base="$SHARED/base.h5" run.seed=5 run.rounds=$ROUNDS \
  train.max_steps=2 eval.max_examples=6 eval.max_new_tokens=6 >/dev/null
"$PYTHON" scripts/derive_config.py "$CFG" "$SHARED/stall.toml" faults.stall_round=2 faults.stall_seconds=6 >/dev/null

mkdir -p "$STATE/scratch/vu"    # the mount point, here; each host mounts its own scratch over $STATE/scratch
# The one-host reference: the same config, the same paths, on this machine's own network and hostname,
# with the whole scenario mounted at $STATE/scratch (in a mount namespace of its own).
unshare --mount --propagation private /bin/sh -c 'mount --bind "$1" "$2" && shift 2 && exec "$@"' ref \
  "$WORK/data" "$STATE/scratch/vu" "$REPO/scripts/mpirun.sh" -np 7 "$PILOT" train --config "$CFG" --out "$SHARED/ref" \
  >"$WORK/ref.out" 2>&1 || { fail bitwise "the one-host run failed: $(tail -n 3 "$WORK/ref.out" | tr '\n' ' ')"; }
# the one-host run must have seen the whole scenario; nothing of it is left at $STATE/scratch here
mountpoint -q "$STATE/scratch/vu" 2>/dev/null && fail setup "the reference's mount leaked into this namespace"

# ---------------------------------------------------------------- locality and bitwise
# rank 0 runs under strace (Open MPI's MPMD syntax), which logs every file it opens
if tc mpirun -np 1 strace -f -qq -e trace=open,openat -o "$WORK/rank0.strace" "$PILOT" train --config "$CFG" --out "$SHARED/cluster" \
     : -np 6 "$PILOT" train --config "$CFG" --out "$SHARED/cluster" >"$WORK/cluster.out" 2>&1; then
  diffs=$("$PYTHON" scripts/studies/compare_rounds.py "$SHARED/ref" "$SHARED/cluster" $ROUNDS 2>&1)
  if [ $? = 0 ]; then pass bitwise "round $ROUNDS on 3 hosts equals the one-host run: $(tail -n 1 <<<"$diffs")"
  else fail bitwise "$(head -n 5 <<<"$diffs" | tr '\n' ' ')"; fi
  bytes=$("$PYTHON" scripts/testcluster_bytes.py "$SHARED/ref/metrics.h5" "$SHARED/cluster/metrics.h5" 2>&1)
  case $bytes in DIFF*|"") fail bytes "$bytes" ;; *) pass bytes "$bytes" ;; esac
  opened=$(grep -c 'open' "$WORK/rank0.strace" 2>/dev/null || echo 0)
  shards=$(grep -E 'client-[0-9]+\.h5' "$WORK/rank0.strace" | grep -v ENOENT | head -n 3)
  placed=""
  for h in tc-h0 tc-h1 tc-h2; do placed+="$h: $(cd "$STATE/hosts/$h/scratch/vu/clients" && ls | tr '\n' ' ')"; done
  if [ "$opened" -gt 0 ] && [ -z "$shards" ]; then pass locality "rank 0 opened $opened files, no client shard; shards placed $placed"
  else fail locality "rank 0 opened ${shards:-nothing traced}"; fi
else
  fail bitwise "the cluster run failed: $(tail -n 5 "$WORK/cluster.out" | tr '\n' ' ')"
fi

# ---------------------------------------------------------------- kill -9 of a whole host, then resume
RUN=$SHARED/killed
setsid "$REPO/scripts/testcluster.sh" mpirun -np 7 "$PILOT" train --config "$SHARED/stall.toml" --out "$RUN" >"$WORK/killed.out" 2>&1 &
W=$!
for i in $(seq 2400); do
  [ "$(cat "$RUN/ckpt/latest" 2>/dev/null)" = round_001.h5 ] && break
  kill -0 "$W" 2>/dev/null || break
  sleep 0.05
done
if [ "$(cat "$RUN/ckpt/latest" 2>/dev/null)" != round_001.h5 ]; then
  fail kill-host "round 1 was never committed: $(tail -n 3 "$WORK/killed.out" | tr '\n' ' ')"
  kill -KILL -- -"$W" 2>/dev/null
else
  sleep 2    # rank 1 stalls round 2 for 6 s: the kill lands in it
  victims=$(ip netns pids pilot-tc-h2 | tr '\n' ' ')
  t0=$(date +%s.%N)
  kill -KILL $victims 2>/dev/null
  for i in $(seq 1200); do kill -0 "$W" 2>/dev/null || break; sleep 0.05; done
  took=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  left=$(for h in tc-h0 tc-h1 tc-h2; do ip netns pids "pilot-$h"; done | wc -l)
  if kill -0 "$W" 2>/dev/null || [ "$left" != 0 ]; then
    fail kill-host "60 s after kill -9 of tc-h2's $(wc -w <<<"$victims") processes, $left processes are still running"
    kill -KILL -- -"$W" 2>/dev/null
  else
    rc=0; wait "$W" || rc=$?
    latest=$(cat "$RUN/ckpt/latest")
    if tc mpirun -np 7 "$PILOT" train --resume "$RUN" >"$WORK/resume.out" 2>&1 \
       && diffs=$("$PYTHON" scripts/studies/compare_rounds.py "$SHARED/ref" "$RUN" $ROUNDS 2>&1); then
      pass kill-host "kill -9 of tc-h2's $(wc -w <<<"$victims") processes in round 2: the job exited $rc after $took s with $latest committed; resumed on the cluster, round $ROUNDS bitwise equal to the one-host run"
    else
      fail kill-host "the resume failed or differs: $(tail -n 3 "$WORK/resume.out" | tr '\n' ' ') ${diffs:-}"
    fi
  fi
fi

# ---------------------------------------------------------------- a host without one of its shards
rm "$STATE/hosts/tc-h1/scratch/vu/clients/client-05.h5"
t0=$(date +%s)
timeout -s KILL 120 "$REPO/scripts/testcluster.sh" mpirun -np 7 "$PILOT" train --config "$CFG" --out "$SHARED/missing" >"$WORK/missing.out" 2>&1
rc=$?
took=$(( $(date +%s) - t0 ))
line=$(grep -m 1 'client-05.h5' "$WORK/missing.out")
if [ "$rc" != 0 ] && [ "$rc" != 124 ] && [ "$took" -lt 60 ] && grep -q 'client 5' <<<"$line" && grep -q 'rank 3 (clients 4–5) on host tc-h1' "$WORK/missing.out"; then
  line="$(grep -m 1 'on host tc-h1' "$WORK/missing.out") $line"
  pass missing-shard "exit $rc after $took s: $line"
else
  fail missing-shard "exit $rc after $took s; the error line: '${line:-none}' (wanted client 5, its rank and host tc-h1)"
fi
stage tc-h1

# refused: expect_refusal NAME PATTERN CMD...: CMD must exit non-zero within 60 s with a line matching PATTERN
expect_refusal() {
  local name=$1 pattern=$2 rc t0 took line; shift 2
  t0=$(date +%s)
  timeout -s KILL 120 "$@" >"$WORK/$name.out" 2>&1
  rc=$?
  took=$(( $(date +%s) - t0 ))
  line=$(grep -m 1 -E "$pattern" "$WORK/$name.out")
  if [ "$rc" != 0 ] && [ "$rc" != 124 ] && [ "$took" -lt 60 ] && [ -n "$line" ]; then pass "$name" "exit $rc after $took s: $line"
  else fail "$name" "exit $rc after $took s; no line matching '$pattern': $(grep -v setpgid "$WORK/$name.out" | tail -n 3 | tr '\n' ' ')"; fi
}

# ---------------------------------------------------------------- hosts with different pilot builds
for h in tc-h0 tc-h1 tc-h2; do mkdir -p "$STATE/hosts/$h/scratch/bin"; cp "$PILOT" "$STATE/hosts/$h/scratch/bin/pilot"; done
"$PYTHON" - "$STATE/hosts/tc-h2/scratch/bin/pilot" <<'EOF2'
import sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
note = b"\x04\x00\x00\x00\x14\x00\x00\x00\x03\x00\x00\x00GNU\x00"   # NT_GNU_BUILD_ID, 20 bytes
i = b.find(note)
assert i >= 0, "no GNU build ID note in " + p
b[i + len(note)] ^= 0xFF
open(p, "wb").write(b)
EOF2
expect_refusal other-build 'different pilot builds: .* on tc-h0 \(ranks 0–2\), tc-h1 \(ranks 3–4\); .* on tc-h2 \(ranks 5–6\)' \
  "$REPO/scripts/testcluster.sh" mpirun -np 7 "$STATE/scratch/bin/pilot" train --config "$CFG" --out "$SHARED/other-build"
for h in tc-h0 tc-h1 tc-h2; do rm -rf "$STATE/hosts/$h/scratch/bin"; done

# ---------------------------------------------------------------- hosts with different base checkpoints
for h in tc-h0 tc-h1; do cp "$SHARED/base.h5" "$STATE/hosts/$h/scratch/base.h5"; done
"$PILOT" pretrain --data "$WORK/data" --out "$STATE/hosts/tc-h2/scratch/base.h5" --model-size micro --steps 5 --batch 8 --eval-test 0 >/dev/null
"$PYTHON" scripts/derive_config.py "$CFG" "$SHARED/local-base.toml" run.base="$STATE/scratch/base.h5" >/dev/null
expect_refusal other-base "different base checkpoints at '$STATE/scratch/base.h5'.* on tc-h0 \\(ranks 0–2\\), tc-h1 \\(ranks 3–4\\); .* on tc-h2 \\(ranks 5–6\\)" \
  "$REPO/scripts/testcluster.sh" mpirun -np 7 "$PILOT" train --config "$SHARED/local-base.toml" --out "$SHARED/other-base"

# ---------------------------------------------------------------- a host without the run directory
# the config and the base are node-local here (the same copies on every host)
for h in tc-h0 tc-h1 tc-h2; do cp "$SHARED/local-base.toml" "$STATE/hosts/$h/scratch/pilot.toml"; cp "$SHARED/base.h5" "$STATE/hosts/$h/scratch/base.h5"; done
PILOT_TC_NO_SHARED=tc-h2 expect_refusal no-run-dir "write to the run directory failed on rank 5 \\(client 7\\) on host tc-h2, rank 6 \\(client 8\\) on host tc-h2, each with: cannot write to the run directory '$SHARED/no-run-dir'" \
  "$REPO/scripts/testcluster.sh" mpirun -np 7 "$PILOT" train --config "$STATE/scratch/pilot.toml" --out "$SHARED/no-run-dir"

# ---------------------------------------------------------------- one copy of the LM per host
LM=${PILOT_SMOLLM2:-$REPO/models/smollm2-135m-instruct}
# host_pss RUN CONFIG: runs CONFIG on the cluster while sampling each host's summed PSS (MB) every 0.2 s;
# prints "peak_h0 peak_h1 peak_h2"
host_pss() {
  local out=$WORK/$1.pss
  rm -f "$out"
  rm -f "$out.stop"
  ( while [ ! -e "$out.stop" ]; do
      line=""
      for h in tc-h0 tc-h1 tc-h2; do
        kb=0
        for p in $(ip netns pids "pilot-$h" 2>/dev/null); do
          v=$(awk '/^Pss:/ { print $2 }' "/proc/$p/smaps_rollup" 2>/dev/null); kb=$(( kb + ${v:-0} ))
        done
        line+="$kb "
      done
      echo "$line" >>"$out"; sleep 0.2
    done ) &
  local sampler=$!
  "$REPO/scripts/testcluster.sh" mpirun -np 7 "$PILOT" train --config "$2" --out "$SHARED/$1" >"$WORK/$1.out" 2>&1
  local rc=$?
  touch "$out.stop"; wait "$sampler" 2>/dev/null
  [ "$rc" = 0 ] || { echo "FAILED"; return; }
  awk '{ for (i = 1; i <= 3; i++) if ($i > m[i]) m[i] = $i } END { printf "%d %d %d", m[1] / 1024, m[2] / 1024, m[3] / 1024 }' "$out"
}
if [ -f "$LM/config.json" ]; then
  "$PILOT" data generate --scenario vu --size tiny --clients-per-task 3 --per-client 8 --test-size 4 --out "$WORK/lmdata" >/dev/null
  "$PILOT" pretrain --data "$WORK/lmdata" --lm "$LM" --out "$SHARED/lmbase.h5" --steps 2 --batch 2 --text-length 64 >/dev/null
  "$PYTHON" scripts/derive_config.py configs/tiny-smollm2/fedavg.toml "$SHARED/lm.toml" run.data="$WORK/lmdata" run.base="$SHARED/lmbase.h5" \
    model.lm="$LM" model.weights_cache="$STATE/scratch/wcache" run.rounds=1 >/dev/null
  "$PYTHON" scripts/derive_config.py "$SHARED/lm.toml" "$SHARED/lm-private.toml" model.share_base=false >/dev/null
  shared=$(host_pss lm-shared "$SHARED/lm.toml")
  private=$(host_pss lm-private "$SHARED/lm-private.toml")
  copies=$(ls "$STATE"/hosts/tc-h*/scratch/wcache/*.pilotw 2>/dev/null | wc -l)
  size=$(( $(stat -c %s "$STATE"/hosts/tc-h1/scratch/wcache/*.pilotw 2>/dev/null | head -n 1 || echo 0) / 1048576 ))
  read -r s0 s1 s2 <<<"$shared"; read -r p0 p1 p2 <<<"$private"
  # tc-h1 and tc-h2 hold 2 client ranks each: sharing saves about one copy of the LM on each
  if [ "$shared" != FAILED ] && [ "$private" != FAILED ] && [ "$copies" = 3 ] && [ "$size" -gt 0 ] \
     && [ $(( p1 - s1 )) -gt $(( size / 2 )) ] && [ $(( p2 - s2 )) -gt $(( size / 2 )) ]; then
    pass one-base "one prepared LM per host ($copies files of $size MB, node-local); peak PSS per host tc-h0/tc-h1/tc-h2 (MB): shared $s0/$s1/$s2, a copy per rank $p0/$p1/$p2"
  else
    fail one-base "prepared copies $copies (want 3) of $size MB; peak PSS per host (MB): shared '$shared', a copy per rank '$private'; see $WORK/lm-shared.out"
  fi
else
  echo "SKIP one-base: no SmolLM2 at $LM (bash scripts/get_smollm2.sh)"
fi

# ---------------------------------------------------------------- Slurm across the hosts
if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null; then
  # 9 tasks, 3 per node: the server and clients 0-2 (ranks 1-2) on tc-h0, clients 3-5 on tc-h1, 6-8 on tc-h2
  CLIENTS=([tc-h0]="0 1 2" [tc-h1]="3 4 5" [tc-h2]="6 7 8")
  for h in tc-h0 tc-h1 tc-h2; do stage "$h"; done
  if tc slurm-up >"$WORK/slurm-up.out" 2>&1; then
    export SLURM_CONF=$STATE/slurm/etc/slurm.conf
    RUN=$SHARED/slurm-run
    timeout 300 "$REPO/scripts/testcluster.sh" exec tc-h0 sbatch --wait --nodes=3 --ntasks=9 --ntasks-per-node=3 --time=4 --parsable \
      -o "$WORK/slurm.out" jobs/train.sbatch "$SHARED/stall.toml" "$RUN" >"$WORK/slurm.id" 2>"$WORK/slurm.err" &
    SB=$!
    for i in $(seq 1800); do [ -f "$RUN/ckpt/round_001.h5" ] || ! kill -0 $SB 2>/dev/null && break; sleep 0.1; done
    if [ -f "$RUN/ckpt/round_001.h5" ]; then
      JOB=$(cat "$WORK/slurm.id")
      tc exec tc-h0 scancel -b -s USR1 "$JOB"
      rc=0; wait $SB || rc=$?
      nodes=$(grep -o 'on 3 hosts ([^)]*)' "$WORK/slurm.out" | head -n 1)
      if [ "$rc" = 0 ] && grep -q "restart 0: exit 75 after USR1" "$RUN/jobs.log" && grep -q "restart 1: exit 0" "$RUN/jobs.log" \
         && diffs=$("$PYTHON" scripts/studies/compare_rounds.py "$SHARED/ref" "$RUN" $ROUNDS 2>&1); then
        pass slurm "job $JOB, train.sbatch --nodes=3 --ntasks-per-node=3 on node-local shards: stopped by USR1 ($(grep -o 'stop requested by SIG[A-Z0-9]*: round [0-9]* is committed' "$WORK/slurm.out" | head -n 1)), requeued, resumed; round $ROUNDS bitwise equal to the one-host run"
      else
        fail slurm "sbatch exited $rc; jobs.log: $(tr '\n' ';' <"$RUN/jobs.log" 2>/dev/null); $(tail -n 5 "$WORK/slurm.out" | tr '\n' ' ') ${diffs:-}"
      fi
    else
      kill $SB 2>/dev/null
      fail slurm "round 1 was never committed: $(tail -n 5 "$WORK/slurm.out" "$WORK/slurm.err" 2>/dev/null | tr '\n' ' ')"
    fi
  else
    fail slurm "Slurm did not come up on the hosts: $(tail -n 3 "$WORK/slurm-up.out" | tr '\n' ' ')"
  fi
  tc slurm-down >/dev/null 2>&1
else
  echo "SKIP slurm: Slurm is not installed (scripts/slurm/slurm-up.sh installs it)"
fi

[ "$FAILED" = 0 ] && echo "testcluster: every check passed" || echo "testcluster: some checks FAILED"
exit $FAILED
