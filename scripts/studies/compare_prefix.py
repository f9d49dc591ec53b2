#!/usr/bin/python3
"""Is a short run the first rounds of a longer one, bit for bit? (issue #19)

    scripts/studies/compare_prefix.py LONG_RUN SHORT_RUN

SHORT_RUN has R rounds, LONG_RUN at least R, same config otherwise (e.g. run.rounds = 3 and 10).
Compares rows 1..R of every dataset of the two metrics.h5, except the wall times (seconds_*), byte for
byte, then every committed round 1..R of the two checkpoints with scripts/studies/compare_rounds.py. Prints one
line per difference and a summary; exits 0 only when all of it is identical apart from what names the
round count (the stored config and its hashes). When either run has no ckpt/ (a committed
results/rounds/ directory keeps only metrics.h5), only the metrics are compared, and it says so: how a
second machine is checked against runs made on another (results/rounds/README.md). Needs h5py and
numpy (Debian: python3-h5py).
"""
import os
import sys

import h5py_python  # noqa: F401  (h5py, or a rerun under /usr/bin/python3)
import h5py

from compare_rounds import compare_round


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
    missing = [run for run in (long_run, short_run) if not os.path.isdir(os.path.join(run, "ckpt"))]
    if missing:
        print(f"checkpoints: none in {', '.join(missing)}; only the metrics were compared")
        sys.exit(1 if bad else 0)
    allowed = {"config", "config_sha256", "attributes_sha256"}   # what names the round count
    for k in range(1, r + 1):
        problems, count, nfiles = compare_round(long_run, short_run, k)
        other = [msg for attr, msg in problems if attr not in allowed]
        named = sorted({attr for attr, _ in problems if attr in allowed})
        if other:
            print(f"round {k}: {len(other)} differences besides the stored config:")
        else:
            print(f"round {k}: all {count} datasets of the round file and the {nfiles - 1} client files identical"
                  + (f"; only {', '.join(named)} differ (the round count)" if named else ""))
        for msg in other[:10]:
            print("   " + msg)
        bad += len(other)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
