#!/usr/bin/env python3
"""Golden values for RobustAggregator (Tests/PilotFederationTests/RobustAggregateTests.swift), from Flower itself.

Rerun (writes Tests/Fixtures/federation/robust_golden.json; pass another path to write elsewhere):
    python3 -m venv /tmp/refs/venv && /tmp/refs/venv/bin/pip install flwr==1.41.0 numpy
    /tmp/refs/venv/bin/python Tests/Fixtures/federation/make_robust_golden.py [OUT.json]

Each input set is a list of client vectors (float32, one tensor per client) with their n_k. They go to
Flower 1.41's legacy strategies as synthetic FitRes objects (as ../shared/refs/fedopt_ref.py builds them):
FedMedian, FedTrimmedAvg(beta), Krum(num_malicious_clients=f, num_clients_to_keep=0) and the same with
num_clients_to_keep=m (Multi-Krum). Every rule runs on float32 inputs (what pilot's clients send; Flower then
computes in float32) and again on the same values as float64 (Flower in float64), so the tests can tell
Flower's float32 rounding from a real difference. Krum's selection is read from Flower, not recomputed: Krum
returns one client's vector unchanged, which is matched to its client; Multi-Krum's clients are captured by
wrapping flwr.server.strategy.aggregate.aggregate, which aggregate_krum calls on them. Flower's own squared
distance matrix (_compute_distances) is kept too, and the scores the script derives from it the way
aggregate_krum does (sort each row, skip the first entry, sum the next n-f-2).
"""
import json
import logging
import sys
from importlib import metadata
from pathlib import Path

import numpy as np
from flwr.common import Code, FitRes, Status, ndarrays_to_parameters, parameters_to_ndarrays
from flwr.server.strategy import FedMedian, FedTrimmedAvg, Krum
from flwr.server.strategy import aggregate as flwr_aggregate

logging.getLogger("flwr").setLevel(logging.ERROR)  # silence "No fit_metrics_aggregation_fn provided"

OUT = Path(__file__).resolve().parent / "robust_golden.json"   # beside this file, in Tests/Fixtures/federation
BETA = 0.2


def input_sets():
    """Deterministic client vectors: outliers, Byzantine clients, and exact ties."""
    rng = np.random.default_rng(20250101)
    outlier = rng.normal(0, 1, (7, 5)).astype(np.float32)
    outlier[3] *= 1e3  # one client scaled x1000
    k10 = rng.normal(0.5, 0.2, (10, 8)).astype(np.float32)
    k10[2] = -10 * k10[2]  # sign-flipping attacker
    k10[7] = 50.0  # constant attacker
    wide = rng.normal(0, 0.05, (12, 64)).astype(np.float32)
    wide[[4, 9]] += rng.normal(0, 3, (2, 64)).astype(np.float32)
    # Exact ties: mirror pairs (x, y, z) and (-x, y, z) of small integers, so every distance and score is exact
    # in float32 and float64 and partners' scores are equal. Clients 1 and 2 tie for the lowest Krum score
    # (Krum takes 1), clients 0 and 3 tie for third (Multi-Krum m=3 takes 0); six clients make the median
    # average two middle values.
    ties = np.array([[3, 0, 1], [1, 0, 2], [-1, 0, 2], [-3, 0, 1], [200, 1, 0], [-200, 1, 0]], np.float32)
    return [
        {"name": "outlier_7x5", "clients": outlier, "samples": [3, 5, 2, 4, 6, 1, 7], "f": 1, "m": 3},
        {"name": "byzantine_10x8", "clients": k10, "samples": [10, 20, 30, 40, 50, 60, 70, 80, 90, 100], "f": 2, "m": 4},
        {"name": "wide_12x64", "clients": wide, "samples": list(range(1, 13)), "f": 2, "m": 6},
        {"name": "ties_6x3", "clients": ties, "samples": [1, 2, 3, 4, 5, 6], "f": 1, "m": 3},
    ]


def fitres(vec, n):
    return FitRes(status=Status(code=Code.OK, message=""), parameters=ndarrays_to_parameters([vec]),
                  num_examples=int(n), metrics={})


def run(strategy, clients, samples):
    results = [(None, fitres(c, n)) for c, n in zip(clients, samples)]
    params, _ = strategy.aggregate_fit(1, results, [])
    (out,) = parameters_to_ndarrays(params)
    return out


def multikrum_clients(clients, samples, f, m):
    """Runs Flower's Multi-Krum, recording which clients aggregate_krum hands to aggregate()."""
    seen = []
    original = flwr_aggregate.aggregate

    def spy(results):
        seen.extend(results)
        return original(results)

    flwr_aggregate.aggregate = spy
    try:
        out = run(Krum(num_malicious_clients=f, num_clients_to_keep=m), clients, samples)
    finally:
        flwr_aggregate.aggregate = original
    used = sorted(next(i for i, c in enumerate(clients) if np.array_equal(w[0], c)) for w, _ in seen)
    assert len(used) == m, used
    return out, used


def golden_for(s, dtype):
    clients = s["clients"].astype(dtype)
    samples, f, m = s["samples"], s["f"], s["m"]
    krum = run(Krum(num_malicious_clients=f, num_clients_to_keep=0), clients, samples)
    krum_used = [i for i, c in enumerate(clients) if np.array_equal(c, krum)][:1]
    multikrum, multikrum_used = multikrum_clients(clients, samples, f, m)
    dist = flwr_aggregate._compute_distances([[c] for c in clients])
    closest = max(1, len(clients) - f - 2)
    scores = [float(np.sum(np.sort(row)[1:closest + 1])) for row in dist]
    return {
        "median": run(FedMedian(), clients, samples).astype(np.float64).tolist(),
        "trimmed_mean": run(FedTrimmedAvg(beta=BETA), clients, samples).astype(np.float64).tolist(),
        "krum": krum.astype(np.float64).tolist(), "krum_used": krum_used,
        "multikrum": multikrum.astype(np.float64).tolist(), "multikrum_used": multikrum_used,
        "krum_scores": scores, "output_dtype": str(krum.dtype),
    }


def main(argv):
    out = Path(argv[1]) if len(argv) > 1 else OUT
    sets = []
    for s in input_sets():
        sets.append({"name": s["name"], "clients": s["clients"].astype(np.float64).tolist(), "samples": s["samples"],
                     "f": s["f"], "m": s["m"], "beta": BETA,
                     "flower_float32": golden_for(s, np.float32), "flower_float64": golden_for(s, np.float64)})
    doc = {"generator": "Tests/Fixtures/federation/make_robust_golden.py", "flwr_version": metadata.version("flwr"),
           "numpy_version": np.__version__, "sets": sets}
    out.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main(sys.argv)
