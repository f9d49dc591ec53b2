#!/usr/bin/env bash
# The engine against PyTorch+peft at real-model scale (issue #15): one LoRA training step of SmolLM2-135M,
# batch 4 × 128 tokens, r=16 on q,k,v,o,gate,up,down, AdamW; pilot and ../shared/bench/hf_lora_step.py
# interleaved (pilot, torch, pilot, torch …) at 1 and 2 threads, pinned with taskset. Prints one JSON
# line per run into results/bench/real-<date>.jsonl and a summary of median ratios.
# Usage: scripts/bench/bench_real.sh [ROUNDS=3]   (needs a quiet machine; PYTHON = a venv with torch, transformers, peft)
# When OPENBLAS_CORETYPE is set (it pins OpenBLAS's kernel; some sites set it machine-wide so that results agree
# across CPU kinds), pilot runs twice per round: as set, and unset (OpenBLAS's own kernel for the CPU). Each JSON
# line names its kernel (blas_core); torch uses MKL and is not affected by the variable.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${1:-3}
PYTHON=${PYTHON:-/tmp/hfref/venv/bin/python}
MODEL=${MODEL:-models/smollm2-135m-instruct}
[ -f "$MODEL/config.json" ] || bash scripts/get_smollm2.sh
[ -x "$PYTHON" ] || { echo "bench_real: no Python with torch at $PYTHON; make one: python3 -m venv /tmp/hfref/venv && /tmp/hfref/venv/bin/pip install 'torch==2.13.0+cpu' transformers peft (set PYTHON=...)" >&2; exit 2; }
swift build -c release >/dev/null
mkdir -p results/bench
OUT=results/bench/real-$(date -u +%Y%m%d-%H%M).jsonl
for r in $(seq 1 "$ROUNDS"); do
  for th in 1 2; do
    cpus=$([ "$th" = 1 ] && echo 0 || echo 0,1)
    echo "bench_real: round $r, $th thread(s): pilot${OPENBLAS_CORETYPE:+ (OPENBLAS_CORETYPE=$OPENBLAS_CORETYPE)}" >&2
    taskset -c "$cpus" .build/release/pilot bench --model "$MODEL" --threads "$th" --steps 5 --warmup 2 --json "$OUT" >/dev/null
    if [ -n "${OPENBLAS_CORETYPE:-}" ]; then
      # the environment pins OpenBLAS's kernel (for bits that agree across CPU kinds); also time its own choice
      echo "bench_real: round $r, $th thread(s): pilot (OPENBLAS_CORETYPE unset: OpenBLAS's own kernel for this CPU)" >&2
      env -u OPENBLAS_CORETYPE taskset -c "$cpus" .build/release/pilot bench --model "$MODEL" --threads "$th" --steps 5 --warmup 2 \
        --json "$OUT" >/dev/null
    fi
    echo "bench_real: round $r, $th thread(s): torch" >&2
    taskset -c "$cpus" "$PYTHON" ../shared/bench/hf_lora_step.py --model "$MODEL" --threads "$th" --steps 5 --warmup 2 2>/dev/null \
      | grep '^{' | sed 's/^{/{"engine": "torch", /' >> "$OUT"
  done
done
python3 - "$OUT" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
def kernel(r):
    env = r.get("openblas_coretype_env")
    return f"{r.get('blas_core', '?')}" + (f", OPENBLAS_CORETYPE={env}" if env else ", OpenBLAS's choice")
for th in (1, 2):
    t = [r["train_tok_per_s"] for r in rows if r["engine"] == "torch" and r["threads"] == th]
    tr = [r["peak_rss_mb"] for r in rows if r["engine"] == "torch" and r["threads"] == th]
    for k in sorted({kernel(r) for r in rows if r["engine"] == "pilot"}):
        p = [r["train_tok_per_s"] for r in rows if r["engine"] == "pilot" and r["threads"] == th and kernel(r) == k]
        pr = [r["peak_rss_mb"] for r in rows if r["engine"] == "pilot" and r["threads"] == th and kernel(r) == k]
        if p and t:
            print(f"{th} thread(s): pilot ({k}) {statistics.median(p):.1f} tok/s, torch {statistics.median(t):.1f} tok/s, "
                  f"ratio {statistics.median(p) / statistics.median(t):.2f}x; peak RSS pilot {max(pr):.0f} MB, torch {max(tr):.0f} MB")
print("raw:", sys.argv[1])
PY
