#!/usr/bin/env bash
# Cached vision features (issue #33 item 3): seconds per Pilot round over an imported LM with a CLIP tower,
# with the cache (`model.cache_vision_features`, the default) and without it, interleaved off, on (cache
# built before round 1), on (cache reused), off. 3 vu clients of 16 examples on `mpirun -np 2` (one client
# rank hosts all three), 3 rounds of 4 steps of 4 examples, every round evaluated on 8 test examples.
#
# Usage: scripts/bench/bench_vision_cache.sh [fixture|vitb]
#   fixture: the tiny test tower Tests/Fixtures/clip/vit-quickgelu (32 px, 16 tokens of 64, 3 layers)
#   vitb:    a random ViT-B-sized tower from scripts/bench/make_clip_tower.py (112 px, patch 14: 64 tokens of 768,
#            12 layers, 86M parameters; CLIP-L/336 is 576 tokens of 1024, 24 layers)
# LM=DIR picks the imported LM (default models/smollm2-135m-instruct, scripts/get_smollm2.sh); VISION_WORK the
# working directory (default /tmp/pilot-bench-vision). Prints one line per run.
set -euo pipefail
cd "$(dirname "$0")/../.."
TOWER=${1:-fixture}
P=${PILOT_BIN:-.build/release/pilot}
LM=$(realpath "${LM:-models/smollm2-135m-instruct}")
WORK=${VISION_WORK:-/tmp/pilot-bench-vision}
mkdir -p "$WORK"
case $TOWER in
  fixture) tower=$PWD/Tests/Fixtures/clip/vit-quickgelu; size=32 ;;
  vitb) tower=$WORK/tower-vitb; size=112
       [ -f "$tower/config.json" ] || python3 scripts/bench/make_clip_tower.py "$tower" --image-size 112 --patch-size 14 \
           --hidden 768 --layers 12 --heads 12 --mlp 3072 >&2 ;;
  *) echo "usage: $0 [fixture|vitb]" >&2; exit 2 ;;
esac
data=$WORK/data-$TOWER
if [ ! -f "$data/base.h5" ]; then
  rm -rf "$data"
  $P data generate --scenario vu --size tiny --clients-per-task 1 --per-client 16 --test-size 8 --image-size $size \
      --seed 3 --out "$data" >/dev/null
  $P pretrain --data "$data" --lm "$LM" --vision-tower "$tower" --out "$data/base.h5" --steps 2 --batch 2 \
      --text-length 64 --eval-test 0 >/dev/null
fi
config() {
  cat <<TOML
[run]
algorithm = "pilot"
seed = 1
rounds = 3
data = "$data"
base = "$data/base.h5"
[model]
lm = "$LM"
$1
[train]
batch_size = 4
max_steps = 4
[eval]
max_examples = 8
max_new_tokens = 4
TOML
}
config "cache_vision_features = false" > "$WORK/off.toml"
config "" > "$WORK/on.toml"
run() {  # NAME CONFIG
  rm -rf "$WORK/run-$1"
  local start end
  start=$(date +%s.%N)
  scripts/mpirun.sh -np 2 $P train --config "$WORK/$2.toml" --out "$WORK/run-$1" > "$WORK/$1.log" 2>&1 \
    || { echo "bench_vision_cache: $1 failed:" >&2; tail -5 "$WORK/$1.log" >&2; exit 1; }
  end=$(date +%s.%N)
  python3 - "$1" "$WORK/$1.log" "$start" "$end" <<'PY'
import re, sys
name, log, start, end = sys.argv[1], open(sys.argv[2]).read(), float(sys.argv[3]), float(sys.argv[4])
rounds = [float(m.group(2)) for m in re.finditer(r"^round (\d+)/\d+ .*?\| ([0-9.]+)s(?: \||$)", log, re.M)]
built = [l for l in log.splitlines() if "images cached in" in l]
build = sum(float(re.search(r"cached in ([0-9.]+) s", l).group(1)) for l in built)
summary = next((l for l in log.splitlines() if "vision features:" in l and ("read from" in l or "computed by" in l)), "")
print(f"{name:10s} rounds {' '.join(f'{r:.2f}' for r in rounds)} s (mean {sum(rounds) / len(rounds):.2f}); "
      f"cache builds {build:.2f} s; wall {end - start:.1f} s | {summary.split('vision features: ')[-1]}")
PY
}
rm -f "$data"/clients/*.vision-*.h5 "$data"/test/*.vision-*.h5
echo "bench_vision_cache: tower $TOWER ($tower), LM $LM, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
run off off
run on-build on
run on-reuse on
run off-again off
