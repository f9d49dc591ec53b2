#!/usr/bin/env bash
# docs/results-smollm2.md (issue #15): Pilot, local training and FedAvg on the vu benchmark with
# SmolLM2-135M-Instruct as the frozen LM, 3 rounds, seed 1, configs/vu-smollm2/. From nothing:
#   the model (scripts/get_smollm2.sh), data/vu (as scripts/results.sh makes it), the base
#   data/vu/base-smollm2.h5 (LLaVA stage 1 on the frozen LM, mpirun -np 2), then the three runs under
#   mpirun -np 10 into runs/smollm2/ (a stopped run is resumed), their metrics.h5 copied into
#   results/smollm2/runs/, and `pilot report` of them beside the tiny-LM runs of docs/results.md
#   (results/runs/vu-{pilot,local,fedavg}-s1) into results/smollm2/table.{md,csv}.
# The base is scored too (pilot eval --base, results/smollm2/base_eval.log). Logs: results/smollm2/*.log. About an hour on 2 cores.   Usage: scripts/results_smollm2.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PILOT=${PILOT_BIN:-.build/release/pilot}
OUT=results/smollm2
LM=models/smollm2-135m-instruct
mkdir -p "$OUT/runs" runs/smollm2
[ -f "$LM/config.json" ] || bash scripts/get_smollm2.sh
if [ ! -f data/vu/scenario.json ]; then
  echo "== data/vu (pilot data generate --scenario vu --task-version 1 --size small --seed 1)"
  "$PILOT" data generate --scenario vu --task-version 1 --size small --seed 1 --out data/vu >/dev/null
fi
if [ ! -f data/vu/base-smollm2.h5 ]; then
  echo "== data/vu/base-smollm2.h5 (pilot pretrain --lm $LM, mpirun -np 2)"
  start=$(date +%s)
  bash scripts/mpirun.sh -np 2 "$PILOT" pretrain --data data/vu --lm "$LM" --out data/vu/base-smollm2.h5 \
      --steps 150 --batch 16 --text-length 64 2>&1 | tee "$OUT/pretrain.log"
  echo "pretrain wall time: $(( $(date +%s) - start )) s" | tee -a "$OUT/pretrain.log"
fi
for a in pilot local fedavg; do
  run=runs/smollm2/vu-smollm2-$a
  if [ "$(cat "$run/ckpt/latest" 2>/dev/null)" = "round_003.h5" ]; then
    echo "== $run: finished"
  elif [ -f "$run/config.toml" ]; then
    echo "== $run: resuming"
    bash scripts/mpirun.sh -np 10 "$PILOT" train --resume "$run" 2>&1 | tee -a "$OUT/$a.log"
  else
    echo "== $run (configs/vu-smollm2/$a.toml, mpirun -np 10)"
    bash scripts/mpirun.sh -np 10 "$PILOT" train --config "configs/vu-smollm2/$a.toml" --out "$run" 2>&1 | tee "$OUT/$a.log"
  fi
  mkdir -p "$OUT/runs/vu-smollm2-$a"
  cp "$run/metrics.h5" "$OUT/runs/vu-smollm2-$a/metrics.h5"
done
# the base every client starts from (pretrained connector, no LoRA), on the same 40 test examples per task
for t in vqa caption grounding; do
  "$PILOT" eval --base data/vu/base-smollm2.h5 --data data/vu --task "$t" --max-examples 40 --max-new-tokens 12 \
      --predictions "$OUT/base-$t-predictions.json"
done | tee "$OUT/base_eval.log"
"$PILOT" report "$OUT"/runs/vu-smollm2-{pilot,local,fedavg} results/runs/vu-{pilot,local,fedavg}-s1 \
    --csv "$OUT/table.csv" | tee "$OUT/table.md"
