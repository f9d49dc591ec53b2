#!/usr/bin/env bash
# The main job, from a fresh machine: set up, build release, and run the multi-rank selftest.
# (Later stages add: generate data, pretrain, federated run under mpirun, results table.)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
echo "== build (release)"
swift build -c release --product pilot 2>&1 | tail -n 3
NP=${NP:-4}
echo "== mpirun -np $NP pilot selftest"
bash scripts/mpirun.sh -np "$NP" .build/release/pilot selftest
