#!/usr/bin/env bash
# The end-to-end runs behind docs/robustness.md and docs/privacy.md (#18): Pilot and FedAvg on the
# small vu scenario (configs/vu, seed 1, R = 3, mpirun -np 10), clean, with client 4 poisoned
# (faults.scale_client = 4: its trained parameters ×1e6 every round) under each defence, and with
# client-level DP. Writes results/robustness/<name>/metrics.h5 (+ config.toml) and prints the
# `pilot report` table. About 70 s per run on the 2-core machine; 16 runs.
# Usage: scripts/studies/robustness_runs.sh [NAME ...]   (default: every run; results are kept, rerun by name)
set -euo pipefail
cd "$(dirname "$0")/../.."
# PILOT: a pilot binary to use (so that a rebuild during the runs does not touch them)
if [ -z "${PILOT:-}" ]; then swift build -c release >/dev/null; fi
P=${PILOT:-.build/release/pilot}
if [ ! -f data/vu/base.h5 ]; then
  [ -f data/vu/scenario.json ] || $P data generate --scenario vu --out data/vu
  bash scripts/mpirun.sh -np 2 $P pretrain --data data/vu --out data/vu/base.h5 --eval-test 200
fi
POISON="faults.scale_client=4 faults.scale_factor=1e6"
declare -A RUNS=(
  [pilot-clean]="configs/vu/pilot.toml"
  [pilot-poisoned-mean]="configs/vu/pilot.toml $POISON"
  [pilot-poisoned-norm]="configs/vu/pilot.toml $POISON robust.max_update_norm=1000"
  [pilot-poisoned-median]="configs/vu/pilot.toml $POISON robust.aggregator=median"
  [pilot-poisoned-trimmed]="configs/vu/pilot.toml $POISON robust.aggregator=trimmed_mean robust.trim=0.34"
  [pilot-poisoned-krum]="configs/vu/pilot.toml $POISON robust.aggregator=krum robust.byzantine_f=0"
  [pilot-poisoned-multikrum]="configs/vu/pilot.toml $POISON robust.aggregator=multi_krum robust.byzantine_f=0 robust.krum_m=2"
  [fedavg-clean]="configs/vu/fedavg.toml"
  [fedavg-poisoned-mean]="configs/vu/fedavg.toml $POISON"
  [fedavg-poisoned-norm]="configs/vu/fedavg.toml $POISON robust.max_update_norm=1000"
  [fedavg-poisoned-median]="configs/vu/fedavg.toml $POISON robust.aggregator=median"
  [fedavg-poisoned-trimmed]="configs/vu/fedavg.toml $POISON robust.aggregator=trimmed_mean robust.trim=0.2"
  [fedavg-poisoned-krum]="configs/vu/fedavg.toml $POISON robust.aggregator=krum robust.byzantine_f=1"
  [fedavg-poisoned-multikrum]="configs/vu/fedavg.toml $POISON robust.aggregator=multi_krum robust.byzantine_f=1 robust.krum_m=5"
  [pilot-dp]="configs/vu/pilot.toml dp.clip=1.0 dp.noise_multiplier=1.0 dp.delta=1e-5"
  [fedavg-dp]="configs/vu/fedavg.toml dp.clip=1.0 dp.noise_multiplier=1.0 dp.delta=1e-5"
)
names=("$@")
[ ${#names[@]} -eq 0 ] && names=(pilot-clean pilot-poisoned-mean pilot-poisoned-norm pilot-poisoned-median pilot-poisoned-trimmed
  pilot-poisoned-krum pilot-poisoned-multikrum fedavg-clean fedavg-poisoned-mean fedavg-poisoned-norm fedavg-poisoned-median
  fedavg-poisoned-trimmed fedavg-poisoned-krum fedavg-poisoned-multikrum pilot-dp fedavg-dp)
mkdir -p results/robustness
for n in "${names[@]}"; do
  spec=${RUNS[$n]}; src=${spec%% *}; overrides=${spec#"$src"}
  run=runs/robustness/$n
  rm -rf "$run"; mkdir -p "$run"
  # shellcheck disable=SC2086
  scripts/derive_config.py "$src" "$run/run.toml" $overrides
  echo "== $n: $src$overrides" >&2
  scripts/mpirun.sh -np 10 $P train --config "$run/run.toml" --out "$run" > "$run/train.log" 2>&1 \
    || { echo "robustness_runs: $n failed:" >&2; tail -5 "$run/train.log" >&2; }
  grep -E "^round|rejected" "$run/train.log" | cut -c1-160 >&2 || true
  mkdir -p "results/robustness/$n"
  # run.toml, not config.toml, shows the faults.* keys (they are not part of the run's identity)
  cp "$run/metrics.h5" "$run/run.toml" "$run/train.log" "results/robustness/$n/" 2>/dev/null || true
done
