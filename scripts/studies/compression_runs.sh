#!/usr/bin/env bash
# The runs behind docs/compression.md, "Results" (#35 item 2): Pilot and FedAvg on the small vu scenario
# (configs/vu/pilot.toml and fedavg.toml as shipped, mpirun -np 10) at R = 6 with exchange.compress = "int8"
# and with "topk" at topk_fraction = 0.1 (error feedback), seeds 1-3. The uncompressed runs they are compared
# with are rows 1-6 of the committed 10-round runs (results/rounds/vu-{pilot,fedavg}-s*-run.rounds=10): the
# schedule does not depend on R, so those rows are an R = 6 run's bit for bit (results/rounds/README.md checks
# it for R = 2 and 3), and they were made with OpenBLAS's Haswell kernel, which these runs pin too.
# Writes results/compression/<name>/metrics.h5 (+ config.toml, train.log's round lines) and prints the table
# (scripts/studies/compression_table.py).
# Usage: scripts/studies/compression_runs.sh [NAME ...]   (default: every run; rerun by name)
set -euo pipefail
cd "$(dirname "$0")/../.."
# PILOT: a pilot binary to use (so that a rebuild during the runs does not touch them);
# LOCK: a file to hold (flock) during each run, on a machine shared with other jobs
if [ -z "${PILOT:-}" ]; then swift build -c release >/dev/null; fi
P=${PILOT:-.build/release/pilot}
export OPENBLAS_CORETYPE=Haswell
declare -A RUNS=()
for s in 1 2 3; do
  for m in pilot fedavg; do
    RUNS[vu-$m-int8-s$s]="configs/vu/$m.toml run.seed=$s run.rounds=6 exchange.compress=int8"
    RUNS[vu-$m-topk-s$s]="configs/vu/$m.toml run.seed=$s run.rounds=6 exchange.compress=topk exchange.topk_fraction=0.1"
  done
done
names=("$@")
[ ${#names[@]} -eq 0 ] && names=(vu-pilot-int8-s1 vu-fedavg-int8-s1 vu-pilot-int8-s2 vu-fedavg-int8-s2 vu-pilot-int8-s3 vu-fedavg-int8-s3
  vu-pilot-topk-s1 vu-fedavg-topk-s1 vu-pilot-topk-s2 vu-fedavg-topk-s2 vu-pilot-topk-s3 vu-fedavg-topk-s3)
mkdir -p results/compression
for n in "${names[@]}"; do
  run=runs/compression/$n
  rm -rf "$run"; mkdir -p "$run"
  # shellcheck disable=SC2086
  set -- ${RUNS[$n]}
  src=$1; shift
  scripts/derive_config.py "$src" "$run/run.toml" "$@"
  echo "== $n: $src $*" >&2
  ${LOCK:+flock "$LOCK"} scripts/mpirun.sh -np 10 "$P" train --config "$run/run.toml" --out "$run" > "$run/train.log" 2>&1 \
    || { echo "compression_runs: $n failed:" >&2; tail -5 "$run/train.log" >&2; continue; }
  mkdir -p "results/compression/$n"
  cp "$run/metrics.h5" "$run/config.toml" "results/compression/$n/"
  grep -E "^round" "$run/train.log" | cut -c1-400 > "results/compression/$n/rounds.txt" || true
  cat "results/compression/$n/rounds.txt" >&2
done
/usr/bin/python3 scripts/studies/compression_table.py
