#!/usr/bin/env bash
# Idempotent set-up of a fresh Debian machine for pilot: installs the system packages that are
# missing (apt-get update at most once, waiting for a held dpkg lock instead of failing) and
# checks the Swift toolchain. Safe to run every time; it does nothing when all is present.
set -euo pipefail

# Build and run dependencies, then test-only ones (h5py/numpy for the interop tests, Pillow as the
# independent encoder/decoder of the image tests, procps for pgrep in scripts/test_signals.sh and
# scripts/bench/node_pss.sh), iproute2 (ip netns) and strace for the test cluster (scripts/testcluster.sh).
# libdnnl-dev is oneDNN, the bf16 matmul kernel for bf16 frozen bases (docs/engine.md).
PACKAGES=(pkg-config libopenmpi-dev openmpi-bin libopenblas-dev libdnnl-dev libhdf5-dev hdf5-tools zlib1g-dev
          libturbojpeg0-dev libpng-dev)
TEST_PACKAGES=(python3 python3-h5py python3-numpy python3-pil procps iproute2 strace)

want=("${PACKAGES[@]}")
if [ "${PILOT_BOOTSTRAP_TESTS:-1}" = "1" ]; then want+=("${TEST_PACKAGES[@]}"); fi

missing=()
for p in "${want[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then missing+=("$p"); fi
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "bootstrap: installing ${missing[*]}"
  SUDO=""
  if [ "$(id -u)" != "0" ]; then
    command -v sudo >/dev/null || { echo "bootstrap: need root or sudo to install ${missing[*]}" >&2; exit 1; }
    SUDO="sudo"
  fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
  $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "bootstrap: system packages present"
fi

# Toolchain: Swift 6 or newer.
if ! command -v swift >/dev/null 2>&1; then
  for d in /opt/swift/usr/bin /usr/share/swift/usr/bin; do [ -x "$d/swift" ] && export PATH="$d:$PATH"; done
fi
command -v swift >/dev/null 2>&1 || { echo "bootstrap: swift not found; install Swift 6 (https://swift.org/install) and put it on PATH" >&2; exit 1; }
ver=$(swift --version 2>/dev/null | sed -n 's/.*Swift version \([0-9]*\)\..*/\1/p' | head -1)
if [ -z "$ver" ] || [ "$ver" -lt 6 ]; then
  echo "bootstrap: Swift 6 or newer is required, found: $(swift --version 2>&1 | head -1)" >&2; exit 1
fi
for pc in ompi-c openblas hdf5 zlib libturbojpeg libpng; do
  pkg-config --exists "$pc" || { echo "bootstrap: pkg-config cannot find $pc after install" >&2; exit 1; }
done
# oneDNN ships no pkg-config file in Debian: check its header.
[ -f /usr/include/oneapi/dnnl/dnnl.h ] || { echo "bootstrap: oneDNN's dnnl.h (libdnnl-dev) missing after install" >&2; exit 1; }
command -v mpirun >/dev/null || { echo "bootstrap: mpirun missing (openmpi-bin)" >&2; exit 1; }
echo "bootstrap: $(swift --version 2>&1 | head -1); $(mpirun --version 2>&1 | head -1)"
