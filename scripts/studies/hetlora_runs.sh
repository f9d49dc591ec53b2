#!/usr/bin/env bash
# The runs behind docs/baselines.md, "Heterogeneous LoRA ranks" (#35 item 1): Pilot on the small vu
# scenario (configs/vu/pilot.toml, R = 3, mpirun -np 10) with LoRA ranks 4, 8 and 16 across the 9
# clients (one of each per task: model.lora_ranks = [4, 8, 16, 4, 8, 16, 4, 8, 16]), next to every
# client at r = 4 and r = 8 (model.lora_rank) and at the shipped r = 16, seeds 1-3.
# Writes results/hetlora/<name>/metrics.h5 (+ config.toml) and prints the `pilot report` table.
# Usage: scripts/studies/hetlora_runs.sh [NAME ...]   (default: every run; rerun by name)
set -euo pipefail
cd "$(dirname "$0")/../.."
# PILOT: a pilot binary to use (so that a rebuild during the runs does not touch them);
# LOCK: a file to hold (flock) during each run, on a machine shared with other jobs
if [ -z "${PILOT:-}" ]; then swift build -c release >/dev/null; fi
P=${PILOT:-.build/release/pilot}
MIXED="model.lora_ranks=[4,8,16,4,8,16,4,8,16]"
declare -A RUNS=()
for s in 1 2 3; do
  RUNS[vu-pilot-mixed-s$s]="run.seed=$s $MIXED"
  RUNS[vu-pilot-r8-s$s]="run.seed=$s model.lora_rank=8"
  RUNS[vu-pilot-r4-s$s]="run.seed=$s model.lora_rank=4"
  RUNS[vu-pilot-r16-s$s]="run.seed=$s"
done
names=("$@")
[ ${#names[@]} -eq 0 ] && names=(vu-pilot-mixed-s1 vu-pilot-r8-s1 vu-pilot-mixed-s2 vu-pilot-r8-s2 vu-pilot-mixed-s3 vu-pilot-r8-s3
  vu-pilot-r4-s1 vu-pilot-r4-s2 vu-pilot-r4-s3 vu-pilot-r16-s1 vu-pilot-r16-s2 vu-pilot-r16-s3)
mkdir -p results/hetlora
for n in "${names[@]}"; do
  run=runs/hetlora/$n
  rm -rf "$run"; mkdir -p "$run"
  # shellcheck disable=SC2086
  set -f; scripts/derive_config.py configs/vu/pilot.toml "$run/run.toml" ${RUNS[$n]}; set +f   # no globbing of [4,8,…]
  echo "== $n: configs/vu/pilot.toml ${RUNS[$n]}" >&2
  ${LOCK:+flock "$LOCK"} scripts/mpirun.sh -np 10 $P train --config "$run/run.toml" --out "$run" > "$run/train.log" 2>&1 \
    || { echo "hetlora_runs: $n failed:" >&2; tail -5 "$run/train.log" >&2; continue; }
  grep -E "^round" "$run/train.log" | cut -c1-160 >&2 || true
  mkdir -p "results/hetlora/$n"
  cp "$run/metrics.h5" "$run/config.toml" "results/hetlora/$n/"
done
$P report results/hetlora/vu-pilot-r4-s* results/hetlora/vu-pilot-r8-s* results/hetlora/vu-pilot-r16-s* results/hetlora/vu-pilot-mixed-s* \
  --label "r = 4 for all=results/hetlora/vu-pilot-r4-s1" --label "r = 8 for all=results/hetlora/vu-pilot-r8-s1" \
  --label "r = 16 for all=results/hetlora/vu-pilot-r16-s1" --label "ranks 4, 8, 16=results/hetlora/vu-pilot-mixed-s1" || true
