#!/usr/bin/env bash
# The main job, from a fresh machine (about 10 minutes on 2 cores):
#   1. install what is missing and build release;
#   2. mpirun -np 4 pilot selftest (MPI, OpenBLAS, HDF5 on this machine);
#   3. generate the vu scenario (9 clients, 3 tasks) into data/vu;
#   4. pretrain the base model on its public split (data-parallel, mpirun -np 2);
#   5. run Pilot under mpirun -np 10 (rank 0 server + 9 clients) and print the per-client table.
# Re-running reuses data/vu and its base model if they exist and starts a fresh run directory.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
echo "== build (release)"
swift build -c release --product pilot 2>&1 | tail -n 1
PILOT=.build/release/pilot
echo "== mpirun -np 4 pilot selftest"
bash scripts/mpirun.sh -np 4 $PILOT selftest
if [ ! -f data/vu/scenario.json ]; then
  echo "== pilot data generate --scenario vu"
  $PILOT data generate --scenario vu --size small --seed 1 --out data/vu
fi
if [ ! -f data/vu/base.h5 ]; then
  echo "== pilot pretrain (mpirun -np 2)"
  bash scripts/mpirun.sh -np 2 $PILOT pretrain --data data/vu --out data/vu/base.h5 --eval-test 200
fi
RUN=runs/vu-pilot-$(date +%Y%m%d-%H%M%S)
echo "== mpirun -np 10 pilot train --config configs/vu/pilot.toml --out $RUN"
bash scripts/mpirun.sh -np 10 $PILOT train --config configs/vu/pilot.toml --out "$RUN"
echo "== done: checkpoints and metrics in $RUN (pilot inspect $RUN/ckpt/round_003.h5)"
