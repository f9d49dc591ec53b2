#!/usr/bin/python3
"""Seconds per round of the secure-aggregation runs (docs/privacy.md): rank 0's round time and the
clients' communication time (which holds the roll call, the key agreement, the masks and the exchange),
mean over the rounds (and the clients), with the final average score.

    scripts/studies/secagg_cost.py RUN_DIR...
"""
import os
import sys

import h5py_python  # noqa: F401  (h5py, or a rerun under /usr/bin/python3)
import h5py
import numpy as np


def main(dirs):
    print("| run | s/round (rank 0) | s/round communicating (clients) | s/round training (clients) | final avg score |")
    print("|---|--:|--:|--:|--:|")
    for d in dirs:
        with h5py.File(os.path.join(d, "metrics.h5")) as f:
            rounds = f["server/seconds_round"][()]
            comm = f["clients/seconds_communicate"][()]
            train = f["clients/seconds_train"][()]
            score = f["clients/eval_score"][()][-1]
        print(f"| {os.path.basename(d.rstrip('/'))} | {rounds.mean():.2f} | {comm.mean():.3f} | {train.mean():.2f} | {np.mean(score):.2f} |")


if __name__ == "__main__":
    main(sys.argv[1:] or sys.exit(__doc__))
