#!/usr/bin/python3
"""Secure against plain fixed-point FedAvg: every dataset of every round's checkpoint (the round file
and each client's file) and every deterministic metric, compared bit for bit.

    scripts/studies/secagg_compare.py RUN_A RUN_B

The runs' configs differ (secure.aggregation against secure.fixed_point), so the files' root attributes
(config text and hash) are not compared. Exits 0 only when everything compared is identical.
"""
import glob
import os
import sys

import h5py_python  # noqa: F401  (h5py, or a rerun under /usr/bin/python3)
import h5py
import numpy as np

METRICS = ["loss_total", "loss_ce", "steps", "eval_score", "bytes_sent", "bytes_received", "participated"]


def datasets(path):
    out = {}
    with h5py.File(path, "r") as f:
        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                out[name] = np.ascontiguousarray(obj[()]).tobytes()
        f.visititems(visit)
    return out


def main(a, b):
    files = sorted(os.path.relpath(p, a) for p in glob.glob(f"{a}/ckpt/round_*.h5") + glob.glob(f"{a}/ckpt/round_*/*.h5"))
    diffs, n = [], 0
    for rel in files:
        x, y = datasets(os.path.join(a, rel)), datasets(os.path.join(b, rel))
        if x.keys() != y.keys():
            diffs.append(f"{rel}: other datasets")
        for k in sorted(x.keys() & y.keys()):
            n += 1
            if x[k] != y[k]:
                diffs.append(f"{rel}:{k}")
    with h5py.File(f"{a}/metrics.h5") as fa, h5py.File(f"{b}/metrics.h5") as fb:
        for m in METRICS:
            n += 1
            if fa["clients/" + m][()].tobytes() != fb["clients/" + m][()].tobytes():
                diffs.append(f"metrics.h5 clients/{m}")
    print(f"{a} vs {b}: {len(files)} checkpoint files, {n} datasets and metrics compared, {len(diffs)} differ"
          + (": " + ", ".join(diffs[:6]) + (" …" if len(diffs) > 6 else "") if diffs else " (bit for bit identical)"))
    return 1 if diffs else 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2]))
