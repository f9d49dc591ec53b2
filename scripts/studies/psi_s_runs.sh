#!/usr/bin/env bash
# The runs behind docs/baselines.md, "The difference loss" (#37 item 3): Pilot on the small vu scenario
# (configs/vu/pilot.toml, mpirun -np 10) with stage 1's client adapter ψs perturbed
# (pilot.psi_s_init = "perturbed", noise 0.1 × each tensor's RMS), with and without the difference
# loss (R = 6), and with ψs a copy (the paper) without the difference loss (R = 3), seeds 1-3. R is only
# the loop bound (docs/results.md, "Round budget"), so rounds 1-3 of an R = 6 run are an R = 3 run. The copy with the
# difference loss is the shipped config: rounds 1-3 of results/rounds/vu-pilot-s{1,2,3}-run.rounds=10
# (R is only the loop bound, so they are R = 3 runs); vu-pilot-copy-repro-s1 reruns seed 1 at R = 3 with
# this binary, and scripts/studies/compare_prefix.py checks it against rows 1-3 of that run. OpenBLAS is
# pinned to its Haswell kernel, as for those runs (results/rounds/README.md).
# Writes results/psi_s/<name>/metrics.h5 (+ config.toml) and prints the `pilot report` table.
# Usage: scripts/studies/psi_s_runs.sh [NAME ...]   (default: every run; rerun by name)
set -euo pipefail
cd "$(dirname "$0")/../.."
# PILOT: a pilot binary to use (so that a rebuild during the runs does not touch them);
# LOCK: a file to hold (flock) during each run, on a machine shared with other jobs
if [ -z "${PILOT:-}" ]; then swift build -c release >/dev/null; fi
P=${PILOT:-.build/release/pilot}
export OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-Haswell}
declare -A RUNS=()
RUNS[vu-pilot-copy-repro-s1]="run.seed=1"
for s in 1 2 3; do
  RUNS[vu-pilot-perturbed-s$s]="run.seed=$s run.rounds=6 pilot.psi_s_init=perturbed"
  RUNS[vu-pilot-perturbed-nold-s$s]="run.seed=$s run.rounds=6 pilot.psi_s_init=perturbed pilot.diff_loss=false"
  RUNS[vu-pilot-copy-nold-s$s]="run.seed=$s pilot.diff_loss=false"
done
names=("$@")
[ ${#names[@]} -eq 0 ] && names=(vu-pilot-perturbed-s1 vu-pilot-perturbed-nold-s1 vu-pilot-perturbed-s2 vu-pilot-perturbed-nold-s2
  vu-pilot-perturbed-s3 vu-pilot-perturbed-nold-s3 vu-pilot-copy-repro-s1 vu-pilot-copy-nold-s1 vu-pilot-copy-nold-s2 vu-pilot-copy-nold-s3)
mkdir -p results/psi_s
for n in "${names[@]}"; do
  run=runs/psi_s/$n
  rm -rf "$run"; mkdir -p "$run"
  # shellcheck disable=SC2086
  scripts/derive_config.py configs/vu/pilot.toml "$run/run.toml" ${RUNS[$n]}
  echo "== $n: configs/vu/pilot.toml ${RUNS[$n]}" >&2
  ${LOCK:+flock "$LOCK"} scripts/mpirun.sh -np 10 $P train --config "$run/run.toml" --out "$run" > "$run/train.log" 2>&1 \
    || { echo "psi_s_runs: $n failed:" >&2; tail -5 "$run/train.log" >&2; continue; }
  grep -E "^round" "$run/train.log" | cut -c1-160 >&2 || true
  mkdir -p "results/psi_s/$n"
  cp "$run/metrics.h5" "$run/config.toml" "results/psi_s/$n/"
done
python3 scripts/studies/compare_prefix.py results/rounds/vu-pilot-s1-run.rounds=10 runs/psi_s/vu-pilot-copy-repro-s1 || true
for r in 3 6; do
$P report --round $r results/rounds/vu-pilot-s[123]-run.rounds=10 results/psi_s/vu-pilot-copy-nold-s* results/psi_s/vu-pilot-perturbed-s* results/psi_s/vu-pilot-perturbed-nold-s* \
  --label "ψs copy, with Ld (the paper)=results/rounds/vu-pilot-s1-run.rounds=10" --label "ψs copy, without Ld=results/psi_s/vu-pilot-copy-nold-s1" \
  --label "ψs perturbed, with Ld=results/psi_s/vu-pilot-perturbed-s1" --label "ψs perturbed, without Ld=results/psi_s/vu-pilot-perturbed-nold-s1" || true
done
