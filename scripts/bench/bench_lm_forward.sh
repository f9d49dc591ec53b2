#!/usr/bin/env bash
# Forward throughput of SmolLM2-135M at batch 4 x 128 tokens: our engine (SmolLM2Tests.forwardThroughput)
# against transformers' forward (torch CPU, f32), interleaved ours/theirs at 1 and then 2 threads, with
# each run's peak RSS. No target: the numbers go to docs/performance.md.
#   scripts/bench/bench_lm_forward.sh [MODEL_DIR]     (default: $PILOT_SMOLLM2 or models/smollm2-135m-instruct)
# Needs: a release test build (swift build -c release --build-tests -Xswiftc -enable-testing), and for the
# reference torch + transformers in ${PYTHON:-python3}.
set -euo pipefail
cd "$(dirname "$0")/../.."
MODEL=${1:-${PILOT_SMOLLM2:-models/smollm2-135m-instruct}}
PY=${PYTHON:-python3}
REPS=${REPS:-3}
TIME=/usr/bin/time
swift build -c release --build-tests -Xswiftc -enable-testing >/dev/null
theirs() {
  "$PY" - "$MODEL" "$1" "$REPS" <<'PYEOF'
import sys, time, torch
from transformers import AutoModelForCausalLM
model_dir, threads, reps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
torch.set_num_threads(threads)
m = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
g = torch.Generator().manual_seed(1)
ids = torch.randint(0, m.config.vocab_size, (4, 128), generator=g)
with torch.no_grad():
    m(ids, use_cache=False, logits_to_keep=1)
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter(); m(ids, use_cache=False, logits_to_keep=1); best = min(best, time.perf_counter() - t0)
print("BENCH transformers threads=%d batch=4 seq=128 best=%.3fs tokens/s=%.1f" % (threads, best, 512 / best))
PYEOF
}
ours() {
  PILOT_LM_BENCH=1 PILOT_BENCH_THREADS=$1 PILOT_BENCH_REPS=$REPS PILOT_SMOLLM2="$MODEL" \
    swift test -c release -Xswiftc -enable-testing --skip-build --filter 'SmolLM2Tests/forwardThroughput' 2>&1 | grep BENCH
}
for threads in 1 2; do
  for round in 1 2; do
    $TIME -f "  peak RSS %M KB" bash -c "$(declare -f ours); MODEL='$MODEL' REPS=$REPS ours $threads" 2>&1
    $TIME -f "  peak RSS %M KB" bash -c "$(declare -f theirs); MODEL='$MODEL' REPS=$REPS PY='$PY' theirs $threads" 2>&1 | grep -v "Loading weights"
  done
done
