#!/usr/bin/env bash
# Decoding benchmark: a 4000x3000 photo-like JPEG (baseline 4:2:0 q90, and progressive) and PNG, decoded
# by pilot (libjpeg-turbo / libpng through ImageDecoder) and by Pillow in the same run; the best of 5
# decodes each, and pilot's peak memory for one decode against a 1x1 image's (both from /usr/bin/time).
# Usage: scripts/bench/bench_image_decode.sh [PILOT_BIN]     (docs/performance.md records the numbers)
set -euo pipefail
cd "$(dirname "$0")/../.."
PILOT=${1:-.build/release/pilot}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
/usr/bin/python3 - "$dir" <<'PY'
import sys, time, numpy as np
from PIL import Image
d = sys.argv[1]
h, w = 3000, 4000
y, x = np.mgrid[0:h, 0:w]
a = np.stack([x * 255 // w, y * 255 // h, (x + y) * 127 // (w + h)], -1).astype(np.int16)
a += np.random.default_rng(1).integers(-12, 13, a.shape, dtype=np.int16)
img = Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))
img.save(f"{d}/photo.jpg", quality=90)
img.save(f"{d}/photo_progressive.jpg", quality=90, progressive=True)
img.save(f"{d}/photo.png", compress_level=6)
Image.new("RGB", (1, 1)).save(f"{d}/one.png")
for f in ["photo.jpg", "photo_progressive.jpg", "photo.png"]:
    best = 1e9
    for _ in range(5):
        t = time.perf_counter(); im = Image.open(f"{d}/{f}"); im.load(); best = min(best, time.perf_counter() - t)
    print(f"pillow {Image.__version__}: {f}: {best*1000:.1f} ms, {w*h/1e6/best:.1f} MP/s")
PY
for f in photo.jpg photo_progressive.jpg photo.png; do
  "$PILOT" data decode "$dir/$f" --repeats 5 | sed "s|$dir/||; s|^|pilot: |"
done
rss() { /usr/bin/time -f "%M" "$PILOT" data decode "$1" 2>&1 >/dev/null | tail -1; }
base=$(rss "$dir/one.png")
for f in photo.jpg photo_progressive.jpg photo.png; do
  peak=$(rss "$dir/$f")
  echo "pilot peak RSS $f: $peak KiB, $((peak - base)) KiB above a 1x1 decode ($base KiB); the RGB buffer is $((4000*3000*3/1024)) KiB"
done
ls -l "$dir" | awk 'NR>1 {print "file", $NF, $5, "bytes"}'
