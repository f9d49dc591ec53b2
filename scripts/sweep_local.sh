#!/usr/bin/env bash
# Runs the lines of a sweep list (default jobs/sweep.txt) one after another under mpirun on this
# machine, exactly as jobs/sweep.sbatch would on Slurm: the same run directories
# (ROOT/<config folder>-<config name>-s<SEED>[-<override>...]), the same derived sweep.toml, and
# resume from a checkpoint when a run directory already has one (a finished run is skipped).
#
#   scripts/sweep_local.sh [LIST [ROOT [FILTER]]]      defaults: jobs/sweep.txt runs/sweep ''
#   scripts/sweep_local.sh jobs/sweep.txt runs/sweep 'configs/vu/'    # only the lines matching FILTER
#
# Then: .build/release/pilot report runs/sweep/vu-*-s[123] ...   (see docs/results.md)
set -euo pipefail
cd "$(dirname "$0")/.."
LIST=${1:-jobs/sweep.txt}
ROOT=${2:-runs/sweep}
FILTER=${3:-}
REPO=$PWD
. jobs/lib.sh
PILOT=${PILOT_BIN:-$REPO/.build/release/pilot}
[ -x "$PILOT" ] || { echo "pilot binary not found at $PILOT: run swift build -c release --product pilot" >&2; exit 2; }
n=0
while read -r LINE; do
  [ -n "$FILTER" ] && [[ "$LINE" != *"$FILTER"* ]] && continue
  read -r -a FIELDS <<<"$LINE"
  CONFIG=${FIELDS[0]}; SEED=${FIELDS[1]}; OVERRIDES=("${FIELDS[@]:2}")
  RUN=$ROOT/$(pilot_run_name "$CONFIG" "$SEED" "${OVERRIDES[@]}")
  mkdir -p "$RUN"
  python3 scripts/derive_config.py "$CONFIG" "$RUN/sweep.toml" "run.seed=$SEED" "${OVERRIDES[@]}"
  n=$((n + 1))
  echo "== [$n] $LINE -> $RUN"
  start=$(date +%s)
  if [ -f "$RUN/ckpt/latest" ]; then
    scripts/mpirun.sh -np 10 "$PILOT" train --resume "$RUN" --config "$RUN/sweep.toml" </dev/null | grep -E "^round|^resumed|already complete" || true
  else
    scripts/mpirun.sh -np 10 "$PILOT" train --config "$RUN/sweep.toml" --out "$RUN" </dev/null | grep -E "^round|^pilot train" || true
  fi
  echo "   $(( $(date +%s) - start )) s"
done < <(sed -e 's/#.*//' -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//' "$LIST" | grep -v '^$')
echo "$n runs in $ROOT"
