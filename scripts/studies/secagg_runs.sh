#!/usr/bin/env bash
# The runs behind docs/privacy.md, "Secure aggregation" (#35 item 3): FedAvg on the small vu scenario
# (configs/vu/fedavg.toml, R = 3, mpirun -np 10) three ways, same seed and placement:
#   vu-fedavg-float-sN   the float average (no [secure] keys: every committed result)
#   vu-fedavg-fixed-sN   secure.fixed_point = true: the fixed-point average without masks (the reference)
#   vu-fedavg-secure-sN  secure.aggregation = true: pairwise-masked fixed-point updates
# then checks that every round's checkpoint datasets of secure and fixed are identical
# (scripts/studies/secagg_compare.py) and prints seconds per round (scripts/studies/secagg_cost.py).
# Writes results/secagg/<name>/metrics.h5 (+ config.toml).
# Usage: scripts/studies/secagg_runs.sh [SEED ...]   (default: 1)
set -euo pipefail
cd "$(dirname "$0")/../.."
# PILOT: a pilot binary to use; LOCK: a file to hold (flock) during each run, on a shared machine
if [ -z "${PILOT:-}" ]; then swift build -c release >/dev/null; fi
P=${PILOT:-.build/release/pilot}
seeds=("$@")
[ ${#seeds[@]} -eq 0 ] && seeds=(1)
declare -A KEYS=([float]="" [fixed]="secure.fixed_point=true" [secure]="secure.aggregation=true")
mkdir -p results/secagg
for s in "${seeds[@]}"; do
  for mode in float fixed secure; do
    n=vu-fedavg-$mode-s$s run=runs/secagg/vu-fedavg-$mode-s$s
    rm -rf "$run"; mkdir -p "$run"
    # shellcheck disable=SC2086
    scripts/derive_config.py configs/vu/fedavg.toml "$run/run.toml" run.seed=$s ${KEYS[$mode]}
    echo "== $n: configs/vu/fedavg.toml run.seed=$s ${KEYS[$mode]}" >&2
    ${LOCK:+flock "$LOCK"} scripts/mpirun.sh -np 10 $P train --config "$run/run.toml" --out "$run" > "$run/train.log" 2>&1 \
      || { echo "secagg_runs: $n failed:" >&2; tail -5 "$run/train.log" >&2; exit 1; }
    grep -E "^round|secure|fixed-point" "$run/train.log" | cut -c1-200 >&2 || true
    mkdir -p "results/secagg/$n"
    cp "$run/metrics.h5" "$run/config.toml" "results/secagg/$n/"
  done
  /usr/bin/python3 scripts/studies/secagg_compare.py "runs/secagg/vu-fedavg-secure-s$s" "runs/secagg/vu-fedavg-fixed-s$s"
  /usr/bin/python3 scripts/studies/secagg_compare.py "runs/secagg/vu-fedavg-float-s$s" "runs/secagg/vu-fedavg-fixed-s$s" || true
done
/usr/bin/python3 scripts/studies/secagg_cost.py results/secagg/vu-fedavg-*
