#!/usr/bin/env bash
# Federation at scale (issue #17), on the tiny vu scenario with the micro model:
#  1. ATA's server step (distances through one sgemm Gram matrix, top-M weights, mixing) for K clients × P
#     LoRA values, on one core (`pilot bench --ata-clients K --ata-params P`), for a ladder of (K, P) up to
#     K = 1024, P = 1M.
#  2. Rounds of Pilot with K = 9, 90 and 900 clients over `mpirun -np 3` (2 client ranks, so 4/5, 45 and 450
#     clients per rank), run.fraction = 1/3 of the clients per round, eval.fraction 0.1 (the last round
#     evaluates every client): seconds per round, the checkpoint's commit seconds, rounds per hour (from the
#     rounds before the last), and the peak RSS of every rank.
# Prints one JSON line per measurement into results/bench/scale-<date>.jsonl and a summary.
# Usage: scripts/bench/bench_scale.sh [--quick]   (--quick: ATA up to K = 256 only; needs a quiet machine)
set -euo pipefail
cd "$(dirname "$0")/../.."
QUICK=${1:-}
swift build -c release >/dev/null
P=.build/release/pilot
mkdir -p results/bench
OUT=results/bench/scale-$(date -u +%Y%m%d-%H%M).jsonl
WORK=${SCALE_WORK:-/tmp/pilot-bench-scale}
mkdir -p "$WORK"

echo "bench_scale: ATA server step on one core" >&2
ladder="64:1000000 256:1000000 1024:65536 1024:262144 1024:1000000"
[ "$QUICK" = "--quick" ] && ladder="64:1000000 256:262144"
for kp in $ladder; do
  k=${kp%%:*}; p=${kp##*:}
  echo "bench_scale:   K=$k P=$p" >&2
  taskset -c 0 $P bench --ata-clients "$k" --ata-params "$p" --threads 1 --json "$OUT" >&2
done

for k in 9 90 900; do
  data=$WORK/k$k
  if [ ! -f "$data/base.h5" ]; then
    echo "bench_scale: generating the K=$k scenario in $data" >&2
    $P data generate --scenario vu --size tiny --clients-per-task $((k / 3)) --per-client 8 --out "$data" >/dev/null
    $P pretrain --data "$data" --out "$data/base.h5" --model-size micro --steps 20 --batch 8 --eval-test 0 >/dev/null
  fi
  cat > "$WORK/k$k.toml" <<TOML
[run]
algorithm = "pilot"
seed = 1
rounds = 3
data = "$data"
base = "$data/base.h5"
fraction = 0.3334
[train]
batch_size = 8
max_steps = 2
[eval]
fraction = 0.1
max_examples = 4
max_new_tokens = 6
TOML
  rm -rf "$WORK/run$k" "$WORK"/rss$k.*
  echo "bench_scale: Pilot, K=$k over mpirun -np 3" >&2
  start=$(date +%s.%N)
  scripts/mpirun.sh -np 3 bash -c "exec /usr/bin/time -f %M -o $WORK/rss$k.\$OMPI_COMM_WORLD_RANK $P train --config $WORK/k$k.toml --out $WORK/run$k" \
    > "$WORK/run$k.log" 2>&1 || { echo "bench_scale: K=$k failed:" >&2; tail -5 "$WORK/run$k.log" >&2; exit 1; }
  wall=$(python3 -c "import time; print(time.time() - $start)")
  "${PYTHON:-/usr/bin/python3}" - "$WORK/run$k" "$k" "$wall" "$OUT" "$WORK"/rss$k.* <<'PY'
import json, sys
import h5py
run, k, wall, out, rss = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4], sys.argv[5:]
with h5py.File(run + "/metrics.h5") as m:
    rounds = m["server/seconds_round"][()].tolist()
    ckpt = m["server/seconds_checkpoint"][()].tolist()
    took = m["clients/participated"][()].sum(axis=1).tolist()
peak = {f.rsplit(".", 1)[1]: int(open(f).read().split()[-1]) / 1024 for f in rss}
row = {"bench": "scale_rounds", "clients": k, "ranks": 3, "trained_per_round": took, "seconds_round": rounds,
       "seconds_checkpoint": ckpt, "rounds_per_hour": 3600 / (sum(rounds[:-1]) / len(rounds[:-1])),
       "peak_rss_mb_by_rank": peak, "wall_seconds": wall}
open(out, "a").write(json.dumps(row) + "\n")
print(f"K={k}: {took[0]:.0f} trained per round, {sum(rounds[:-1]) / len(rounds[:-1]):.2f} s per round (rounds 1-2, eval.fraction 0.1), "
      f"{rounds[-1]:.2f} s for the last (every client evaluated), "
      f"commit {max(ckpt):.2f} s, {row['rounds_per_hour']:.0f} rounds/h, peak RSS by rank (MB) "
      + ", ".join(f"{r}: {v:.0f}" for r, v in sorted(peak.items())))
PY
done
echo "raw: $OUT"
