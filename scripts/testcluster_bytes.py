#!/usr/bin/python3
"""scripts/testcluster_bytes.py A/metrics.h5 B/metrics.h5: whether every bytes dataset of two runs'
metrics files is equal (scripts/testcluster_checks.sh). Prints one line: "DIFF ..." or what is equal."""
import sys

import h5py
import numpy as np

a, b = (h5py.File(p, "r") for p in sys.argv[1:3])
names = []
a.visit(lambda n: names.append(n) if "bytes" in n.split("/")[-1] and isinstance(a[n], h5py.Dataset) else None)
bad = [n for n in names if n not in b or a[n].shape != b[n].shape or not np.array_equal(a[n][()], b[n][()], equal_nan=True)]
if bad or not names:
    print("DIFF " + (" ".join(bad) if bad else "no bytes datasets in " + sys.argv[1]))
else:
    got = a["server/bytes_received"][()] if "server/bytes_received" in a else []
    print(f"{len(names)} byte datasets equal ({', '.join(names)}); the server received {[int(x) for x in got]} bytes by round")
