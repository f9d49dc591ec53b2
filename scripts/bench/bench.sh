#!/usr/bin/env bash
# Interleaved speed comparison of `pilot bench` and ../shared/bench/jax_ref.py --bench (Swift, JAX, Swift, JAX)
# at 1 thread (pinned to core 0) and 2 threads. Usage: scripts/bench/bench.sh [rounds] [jax-python]
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${1:-2}
PY=${2:-/tmp/bench-venv/bin/python}
REF=../shared/bench/jax_ref.py
swift build -c release --scratch-path .build-engine --product pilot >/dev/null
# malloc-family call counter, preloaded into the Swift runs so that `pilot bench` reports allocations per step
cc -O2 -shared -fPIC -o .build-engine/libmalloc_count.so scripts/bench/malloc_count.c
PILOT="env LD_PRELOAD=$PWD/.build-engine/libmalloc_count.so .build-engine/release/pilot"
for r in $(seq 1 "$ROUNDS"); do
  echo "== round $r, 1 thread (load: $(cut -d' ' -f1-3 /proc/loadavg))"
  OPENBLAS_NUM_THREADS=1 taskset -c 0 $PILOT bench --threads 1 | grep -E "tokens/s|sgemm peak|RSS|allocations"
  XLA_FLAGS=--xla_cpu_multi_thread_eigen=false taskset -c 0 "$PY" $REF --bench | grep "tokens/s"
  echo "== round $r, 2 threads (load: $(cut -d' ' -f1-3 /proc/loadavg))"
  OPENBLAS_NUM_THREADS=2 taskset -c 0,1 $PILOT bench --threads 2 | grep -E "tokens/s|sgemm peak|RSS|allocations"
  taskset -c 0,1 "$PY" $REF --bench | grep "tokens/s"
done
