#!/usr/bin/python3
"""Is a short run the first rounds of a longer one, bit for bit? (issue #19)

    scripts/compare_prefix.py LONG_RUN SHORT_RUN

SHORT_RUN has R rounds, LONG_RUN at least R, same config otherwise (e.g. run.rounds = 3 and 10).
Compares rows 1..R of every dataset of the two metrics.h5, except the wall times (seconds_*), byte for
byte, then every committed round 1..R of the two checkpoints with scripts/compare_rounds.py. Prints one
line per difference and a summary; exits 0 only when all of it is identical apart from what names the
round count (the stored config and its hashes). Needs h5py and numpy (Debian: python3-h5py).
"""
import os
import subprocess
import sys

import h5py_python  # noqa: F401  (h5py, or a rerun under /usr/bin/python3)
import h5py
import numpy as np


def rows(path):
    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, o: out.__setitem__(name, o[()]) if isinstance(o, h5py.Dataset) else None)
    return out


def main(long_run, short_run):
    a, b = rows(os.path.join(long_run, "metrics.h5")), rows(os.path.join(short_run, "metrics.h5"))
    r = len(b["round"])
    bad = 0
    for name in sorted(set(a) | set(b)):
        if os.path.basename(name).startswith("seconds_"):
            continue
        if name not in a or name not in b:
            print(f"metrics: {name} only in {'the long' if name in a else 'the short'} run"); bad += 1; continue
        x, y = a[name][:r], b[name]
        if x.dtype != y.dtype or x.shape != y.shape or x.tobytes() != y.tobytes():
            print(f"metrics: {name} differs in rounds 1-{r}: {x.ravel()[:6]} vs {y.ravel()[:6]}"); bad += 1
    print(f"metrics.h5: rows 1-{r}, {len(b)} datasets (wall times excluded): {'identical' if not bad else f'{bad} differ'}")
    here = os.path.dirname(os.path.abspath(__file__))
    allowed = ("config", "config_sha256", "attributes_sha256")
    for k in range(1, r + 1):
        p = subprocess.run([sys.executable, os.path.join(here, "compare_rounds.py"), long_run, short_run, str(k)],
                           capture_output=True, text=True)
        lines = [ln for ln in p.stdout.splitlines() if ln.strip()]
        # compare_rounds prints "<file>: attribute NAME ..." per difference; only the round count may differ.
        shown = lines[:-1]
        other = [ln for ln in shown if not any(f"attribute {n} differs" in ln for n in allowed)]
        if lines and lines[-1].startswith("DIFFERENT:") and int(lines[-1].split()[1]) > len(shown):
            other.append(f"(and {int(lines[-1].split()[1]) - len(shown)} differences compare_rounds.py did not print)")
        if p.returncode != 0 and not lines:
            other.append(p.stderr.strip())
        if other:
            print(f"round {k}: {len(other)} differences besides the stored config:")
        elif shown:
            print(f"round {k}: every dataset of the round file and the client files identical; only "
                  + ", ".join(sorted({ln.split("attribute ")[1].split()[0] for ln in shown})) + " differ (the round count)")
        else:
            print(f"round {k}: {lines[-1]}")
        for ln in other[:10]:
            print("   " + ln)
        bad += len(other)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
