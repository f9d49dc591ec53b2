#!/usr/bin/python3
"""Bitwise comparison of one committed round of two runs.

    scripts/studies/compare_rounds.py RUN_A RUN_B ROUND

Compares RUN/ckpt/round_NNN.h5 and every file under RUN/ckpt/round_NNN/ (the clients' files):
the same files, the same datasets in each, and for every dataset the same dtype, shape and bytes;
also the root attributes of every file. Prints one line per difference and a summary; exits 0 only
when everything is identical. Needs h5py and numpy (Debian: python3-h5py python3-numpy, which
/usr/bin/python3 has).
"""
import os
import sys

import h5py_python  # noqa: F401  (h5py, or a rerun under /usr/bin/python3)
import h5py
import numpy as np


def datasets(path):
    out = {}
    with h5py.File(path, "r") as f:
        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                out[name] = (obj.dtype.str, obj.shape, np.ascontiguousarray(obj[()]).tobytes())
        f.visititems(visit)  # does not follow the round file's external links to the client files
        attrs = {k: v.tolist() if isinstance(v, np.ndarray) else v for k, v in f.attrs.items()}
    return out, attrs


def compare_round(a, b, rnd):
    """The differences between round `rnd` of runs a and b, as (attribute name or None, message) pairs,
    the number of datasets compared and the number of files they are in."""
    sub = "round_%03d" % rnd
    files = {}
    for run in (a, b):
        d = os.path.join(run, "ckpt", sub)
        if not os.path.isdir(d):
            sys.exit(f"{d}: no such directory (round {rnd} not committed?)")
        # a commit killed before its rename leaves ".NAME.tmp-PID…"; it is not part of the round
        files[run] = [sub + ".h5"] + sorted(os.path.join(sub, n) for n in os.listdir(d)
                                            if not (n.startswith(".") and ".tmp-" in n))
    problems = []
    if files[a] != files[b]:
        problems.append((None, f"different files: {sorted(set(files[a]) ^ set(files[b]))}"))
    count = 0
    for name in sorted(set(files[a]) & set(files[b])):
        da, aa = datasets(os.path.join(a, "ckpt", name))
        db, ab = datasets(os.path.join(b, "ckpt", name))
        if sorted(da) != sorted(db):
            problems.append((None, f"{name}: different datasets: {sorted(set(da) ^ set(db))[:5]}"))
        for k in sorted(set(da) & set(db)):
            count += 1
            if da[k] != db[k]:
                problems.append((None, f"{name}:{k}: differs"))
        for k in sorted(set(aa) | set(ab)):
            if aa.get(k) != ab.get(k):
                problems.append((k, f"{name}: attribute {k} differs"))
    return problems, count, len(files[a])


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    a, b, rnd = sys.argv[1], sys.argv[2], int(sys.argv[3])
    problems, count, nfiles = compare_round(a, b, rnd)
    for _, p in problems[:20]:
        print(p)
    if problems:
        print(f"DIFFERENT: {len(problems)} differences in round {rnd} of {a} and {b}")
        sys.exit(1)
    if count == 0:
        sys.exit("no datasets found")
    print(f"IDENTICAL: {count} datasets in {nfiles} files of round {rnd}")


if __name__ == "__main__":
    main()
