#!/usr/bin/env python3
"""Wall time per run, per configuration, from the runs' metrics.h5 (for docs/results.md).

    scripts/walltime.py RUN_DIR...

Groups the runs whose directory names differ only in the seed (`-s<N>`), and prints a markdown
table: runs, mean seconds per round, mean seconds per run (the sum of rank 0's round times:
training, communication, aggregation, evaluation and checkpoints; MPI start-up and data loading,
2-5 s, are not in metrics.h5). Needs h5py.
"""
import os
import re
import sys

try:
    import h5py
except ModuleNotFoundError:
    # The python3 first on PATH (pyenv, conda, a venv) may lack h5py; scripts/bootstrap.sh installs it
    # for Debian's /usr/bin/python3, so rerun there once before giving up.
    if os.path.realpath(sys.executable) != os.path.realpath("/usr/bin/python3") and os.path.exists("/usr/bin/python3") \
            and not os.environ.get("PILOT_PY_REEXEC"):
        os.environ["PILOT_PY_REEXEC"] = "1"
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
    sys.exit(f"{sys.argv[0]}: {sys.executable} has no h5py; run it with /usr/bin/python3 (scripts/bootstrap.sh "
             "installs python3-h5py there) or `pip install h5py numpy` into this Python")


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
