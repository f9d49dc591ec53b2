#!/usr/bin/env python3
"""Golden values for the strategies' pure `aggregate` (Tests/PilotFederationTests/StrategyAggregateTests.swift).

Usage: python3 Tests/Fixtures/federation/make_strategy_golden.py > Tests/Fixtures/federation/strategy_golden.json

numpy float64 only. FedAvg/FedProx and FedAdam follow the formulas of ../shared/refs/fedopt_ref.py, which
documents them as Flower 1.41's (fedavg.py aggregate_inplace; fedadam.py aggregate_fit, bias correction with
exponent t+1). That script calls flwr itself and needs the refs venv; this one needs only numpy, and its
FedAvg/FedAdam numbers on BaselineMathTests' input agree with the values fedopt_ref.py printed from flwr
(checked by the tests). Pilot's Eq. 10 (n_k-weighted task mean) and ATA (Eq. 11-12: top-M nearest clients,
inverse-distance weights, Z = n_k + sum n_k' w_k') have no Flower counterpart; they are written from
docs/design.md §3 directly (direct distances, no Gram matrix).
"""
import json

import numpy as np

# Three clients, tasks [0, 1, 0], n = [3, 5, 2]; one round of vectors of 5 values.
CLIENTS = [[0.1, -0.2, 0.0, 0.05, 0.3], [0.3, 0.1, -0.4, 0.0, 0.2], [-0.2, 0.0, 0.1, 0.5, -0.1]]
SAMPLES = [3, 5, 2]
TASKS = [0, 1, 0]
# FedAdam (delta mode): global x0, three rounds of client updates.
INITIAL = [0.5, -1.25, 0.0, 2.0, 0.125]
ROUNDS = [
    CLIENTS,
    [[0.02, 0.04, -0.06, 0.01, 0.0], [-0.05, 0.03, 0.02, -0.01, 0.07], [0.0, -0.09, 0.05, 0.02, 0.01]],
    [[-0.3, 0.2, 0.1, -0.1, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0], [0.4, -0.2, 0.3, 0.2, -0.5]],
]
HYPER = {"eta": 0.05, "beta_1": 0.9, "beta_2": 0.99, "tau": 1e-3}


def weighted_mean(x, w):
    x, w = np.asarray(x, np.float64), np.asarray(w, np.float64)
    return (w[:, None] * x).sum(0) / w.sum()


def fedadam(bias_corrected):
    x = np.asarray(INITIAL, np.float64)
    m = np.zeros_like(x)
    v = np.zeros_like(x)
    out = []
    for t, clients in enumerate(ROUNDS, start=1):
        delta = weighted_mean(clients, SAMPLES)  # mean of x_k - x = x_avg - x
        m = HYPER["beta_1"] * m + (1 - HYPER["beta_1"]) * delta
        v = HYPER["beta_2"] * v + (1 - HYPER["beta_2"]) * delta ** 2
        eta = HYPER["eta"]
        if bias_corrected:
            eta = eta * np.sqrt(1 - HYPER["beta_2"] ** (t + 1)) / (1 - HYPER["beta_1"] ** (t + 1))
        x = x + eta * m / (np.sqrt(v) + HYPER["tau"])
        out.append(x.tolist())
    return out


def task_means(x, n, tasks, num_tasks):
    return [weighted_mean([x[k] for k in range(len(x)) if tasks[k] == t],
                          [n[k] for k in range(len(x)) if tasks[k] == t]).tolist() for t in range(num_tasks)]


def ata(x, n, m_top):
    x = np.asarray(x, np.float64)
    k = len(x)
    d = np.sqrt(((x[:, None, :] - x[None, :, :]) ** 2).sum(-1))
    out = []
    for i in range(k):
        cand = sorted((j for j in range(k) if j != i), key=lambda j: (d[i, j], j))[:m_top]
        inv = np.array([1 / d[i, j] for j in cand])
        w = inv / inv.sum()
        z = n[i] + sum(n[j] * wj for j, wj in zip(cand, w))
        row = n[i] * x[i] + sum(n[j] * wj * x[j] for j, wj in zip(cand, w))
        out.append((row / z).tolist())
    return out


golden = {
    "clients": CLIENTS, "samples": SAMPLES, "tasks": TASKS,
    "fedavg": weighted_mean(CLIENTS, SAMPLES).tolist(),
    "feddpa_uniform": weighted_mean(CLIENTS, [1, 1, 1]).tolist(),
    "fedadam": {"initial": INITIAL, "rounds": ROUNDS, "hyper": HYPER,
                "bias_corrected": fedadam(True), "paper": fedadam(False)},
    "pilot_task_means": task_means(CLIENTS, SAMPLES, TASKS, 2),
    "pilot_ata_m1": ata(CLIENTS, SAMPLES, 1),
    "pilot_ata_m2": ata(CLIENTS, SAMPLES, 2),
}
print(json.dumps(golden, indent=1))
