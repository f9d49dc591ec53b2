#!/usr/bin/env python3
"""Wall time per run, per configuration, from the runs' metrics.h5 (for docs/results.md).

    scripts/studies/walltime.py RUN_DIR...

Groups the runs whose directory names differ only in the seed (`-s<N>`), and prints a markdown
table: runs, mean seconds per round, mean seconds per run (the sum of rank 0's round times:
training, communication, aggregation, evaluation and checkpoints; MPI start-up and data loading,
2-5 s, are not in metrics.h5). Needs h5py.
"""
import os
import re
import sys

import h5py_python  # noqa: F401  (h5py, or a rerun under /usr/bin/python3)
import h5py


def main(dirs):
    groups = {}
    for d in dirs:
        path = os.path.join(d, "metrics.h5")
        if not os.path.isfile(path):
            continue
        name = re.sub(r"-s\d+(?=-|$)", "-s*", os.path.basename(os.path.normpath(d)), count=1)
        with h5py.File(path, "r") as f:
            rounds = f["server/seconds_round"][()]
        groups.setdefault(name, []).append((len(rounds), float(sum(rounds))))
    print("| runs | n | rounds | s per round | s per run |")
    print("|---|--:|--:|--:|--:|")
    for name, runs in groups.items():
        n = len(runs)
        rounds = sum(r for r, _ in runs) / n
        total = sum(t for _, t in runs) / n
        print(f"| `{name}` | {n} | {rounds:.0f} | {total / rounds:.1f} | {total:.0f} |")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
