#!/usr/bin/python3
"""The tables of docs/robustness.md and docs/privacy.md from results/robustness/<run>/metrics.h5.

    scripts/studies/robustness_table.py [RUN ...]     (default: every run under results/robustness, in a fixed order)

Per run, at its last round: each task's mean score over its clients (×100, as `pilot report`), the mean
of the task means (avg), the same avg without client 4 (the poisoned client in the poisoned runs),
client 4's own score, the rejected updates over all rounds, and ε for the DP runs. `pilot report`
cannot tell these runs apart: they differ only in `faults.*`, which is not part of a run's identity.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import h5py_python  # noqa: F401,E402  (h5py, or a rerun under /usr/bin/python3)
import h5py  # noqa: E402
import numpy as np  # noqa: E402

ORDER = ["pilot-clean", "pilot-poisoned-mean", "pilot-poisoned-norm", "pilot-poisoned-median", "pilot-poisoned-trimmed",
         "pilot-poisoned-krum", "pilot-poisoned-multikrum", "fedavg-clean", "fedavg-poisoned-mean", "fedavg-poisoned-norm",
         "fedavg-poisoned-median", "fedavg-poisoned-trimmed", "fedavg-poisoned-krum", "fedavg-poisoned-multikrum",
         "pilot-dp", "fedavg-dp"]
root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "results", "robustness")
runs = sys.argv[1:] or [n for n in ORDER if os.path.exists(os.path.join(root, n, "metrics.h5"))]
print("| run | vqa | caption | grounding | avg | avg without client 4 | client 4 | rejected | ε (δ 1e-5) |")
print("|---|--:|--:|--:|--:|--:|--:|--:|--:|")
for name in runs:
    path = name if os.path.isdir(name) else os.path.join(root, name)
    with h5py.File(os.path.join(path, "metrics.h5")) as m:
        tasks = [t.decode() if isinstance(t, bytes) else t for t in m.attrs["client_tasks"]]
        scores = m["clients/eval_score"][-1]
        rejected = int(np.nansum(m["clients/rejected"][()])) if "clients/rejected" in m else 0
        eps = m["server/dp_epsilon"][-1] if "server/dp_epsilon" in m else float("nan")
    order = list(dict.fromkeys(tasks))
    means = [np.mean([s for s, t in zip(scores, tasks) if t == task]) for task in order]
    without = [np.mean([s for k, (s, t) in enumerate(zip(scores, tasks)) if t == task and k != 4]) for task in order]
    cells = [f"{100 * v:.1f}" for v in means] + [f"{100 * np.mean(means):.1f}", f"{100 * np.mean(without):.1f}", f"{100 * scores[4]:.1f}",
                                                  str(rejected), "" if np.isnan(eps) else f"{eps:.1f}"]
    print(f"| {os.path.basename(path)} | " + " | ".join(cells) + " |")
