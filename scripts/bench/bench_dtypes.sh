#!/usr/bin/env bash
# Base dtypes against PyTorch's modes (issue #33 speed targets): one LoRA step of SmolLM2-135M at 4 × 128, r=16 on
# all seven linears, AdamW; `pilot bench --model M --base-dtype f32|bf16|q8` and
# ../shared/bench/hf_lora_step_modes.py --mode fp32|bf16|autocast, interleaved round by round at 1 and 2 threads,
# pinned with taskset. One JSON line per run into results/bench/dtypes-<date>.jsonl and a summary: each pilot dtype
# against pilot's f32 and against PyTorch's fastest mode, as ratios of medians.
# Usage: scripts/bench/bench_dtypes.sh [ROUNDS=3]   (a quiet machine; PYTHON = a venv with torch, transformers, peft;
# THREADS="1 2"; PILOT = the binary)
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${1:-3}
PYTHON=${PYTHON:-/tmp/hfref/venv/bin/python}
PILOT=${PILOT:-.build/release/pilot}
MODEL=${MODEL:-models/smollm2-135m-instruct}
THREADS=${THREADS:-1 2}
REF=${REF:-../shared/bench/hf_lora_step_modes.py}
[ -f "$MODEL/config.json" ] || bash scripts/get_smollm2.sh
[ -x "$PILOT" ] || swift build -c release >/dev/null
TORCH=1
if [ ! -x "$PYTHON" ] || [ ! -f "$REF" ]; then
  echo "bench_dtypes: no PyTorch reference ($PYTHON, $REF): timing pilot alone. Make one: python3 -m venv /tmp/hfref/venv && /tmp/hfref/venv/bin/pip install 'torch==2.13.0+cpu' transformers peft" >&2
  TORCH=0
fi
mkdir -p results/bench
OUT=results/bench/dtypes-$(date -u +%Y%m%d-%H%M).jsonl
for r in $(seq 1 "$ROUNDS"); do
  for th in $THREADS; do
    cpus=$([ "$th" = 1 ] && echo 0 || echo 0,1)
    for d in f32 bf16 q8; do
      echo "bench_dtypes: round $r, $th thread(s): pilot $d" >&2
      taskset -c "$cpus" "$PILOT" bench --model "$MODEL" --base-dtype "$d" --threads "$th" --steps 5 --warmup 2 --json "$OUT" >/dev/null
    done
    if [ "$TORCH" = 1 ]; then
      for m in fp32 bf16 autocast; do
        echo "bench_dtypes: round $r, $th thread(s): torch $m" >&2
        taskset -c "$cpus" "$PYTHON" "$REF" --model "$MODEL" --mode "$m" --threads "$th" --steps 5 --warmup 2 2>/dev/null \
          | grep '^{' | sed "s/^{/{\"engine\": \"torch\", \"mode\": \"$m\", /" >> "$OUT"
      done
    fi
  done
done
python3 - "$OUT" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
def med(engine, key, th):
    v = [r["train_tok_per_s"] for r in rows if r.get("engine") == engine and r.get("threads") == th
         and (r.get("base_dtype") if engine == "pilot" else r.get("mode")) == key and "train_tok_per_s" in r]
    return statistics.median(v) if v else None
for th in sorted({r.get("threads") for r in rows}):
    torch = {m: med("torch", m, th) for m in ("fp32", "bf16", "autocast")}
    best = max(((v, m) for m, v in torch.items() if v), default=(None, None))
    f32 = med("pilot", "f32", th)
    print(f"{th} thread(s): torch " + ", ".join(f"{m} {v:.1f}" for m, v in torch.items() if v) + (f" (fastest: {best[1]})" if best[0] else ""))
    for d in ("f32", "bf16", "q8"):
        v = med("pilot", d, th)
        if v is None: continue
        line = f"  pilot {d}: {v:.1f} tokens/s = {v / f32:.2f}× pilot f32"
        if best[0]: line += f", {v / best[0]:.2f}× torch {best[1]}"
        print(line)
print(f"({len(rows)} runs in {sys.argv[1]})")
PY
