#!/usr/bin/python3
"""The table of docs/compression.md, "Results": for Pilot and FedAvg on vu at R = 6, each codec's `avg`
(mean of the three task means of eval_score, ×100, as `pilot report`) at round 6 per seed, its change
against the uncompressed run of the same seed (rows 1-6 of results/rounds/vu-<method>-s<seed>-run.rounds=10),
and the bytes per client per round on the wire (up and down) next to the Float32 size.
Writes results/compression/table.md and prints it. Needs h5py (/usr/bin/python3).
"""
import os
import statistics as st

import h5py
import numpy as np

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
R = 6


def avg(path, r=R):
    with h5py.File(path, "r") as f:
        rounds = list(f["round"][()])
        row = f["clients/eval_score"][rounds.index(r)]
        tasks = [t.decode() if isinstance(t, bytes) else t for t in f.attrs["client_tasks"]]
    means = [np.mean([s for s, t in zip(row, tasks) if t == task]) for task in dict.fromkeys(tasks)]
    return 100 * float(np.mean(means))


def bytes_per_round(path):
    with h5py.File(path, "r") as f:
        get = lambda k: f["clients/" + k][()] if "clients/" + k in f else None
        up, down = get("bytes_sent"), get("bytes_received")
        raw_up, raw_down = get("bytes_sent_uncompressed"), get("bytes_received_uncompressed")
    raw_up = up if raw_up is None else raw_up
    raw_down = down if raw_down is None else raw_down
    # per client per round (mean over clients), round 1 and rounds 2..R
    m = lambda a: (float(np.nanmean(a[0])), float(np.nanmean(a[1:R])))
    return m(up), m(raw_up), m(down), m(raw_down)


def fmt(v):
    return f"{st.mean(v):.1f} ± {st.stdev(v):.1f}" if len(v) > 1 else f"{v[0]:.1f}"


def main():
    lines = ["| method | exchange.compress | avg at R = 6 (mean ± std over the seeds run) | change per seed (s1, s2, s3) | mean change | seed std (uncompressed) | up, bytes/client/round: round 1; rounds 2-6 (Float32) | down, bytes/client/round |",
             "|---|---|--:|---|--:|--:|---|---|"]
    for method in ["pilot", "fedavg"]:
        base = [os.path.join(ROOT, f"results/rounds/vu-{method}-s{s}-run.rounds=10/metrics.h5") for s in (1, 2, 3)]
        b = [avg(p) for p in base]
        up, raw_up, down, raw_down = bytes_per_round(base[0])
        lines.append(f"| {method} | none | {fmt(b)} | | | {st.stdev(b):.1f} | {up[0]:,.0f}; {up[1]:,.0f} | {down[1]:,.0f} |")
        for codec, label in [("int8", "int8"), ("topk", "topk, 0.1")]:
            runs = [os.path.join(ROOT, f"results/compression/vu-{method}-{codec}-s{s}/metrics.h5") for s in (1, 2, 3)]
            have = [(s, p) for s, p in zip((1, 2, 3), runs) if os.path.exists(p)]
            if not have:
                lines.append(f"| {method} | {label} | not run | | | | | |"); continue
            a = [avg(p) for _, p in have]
            d = [x - b[s - 1] for x, (s, _) in zip(a, have)]
            up, raw_up, down, raw_down = bytes_per_round(have[0][1])
            seeds = ", ".join(f"{x:+.1f}" for x in d) + ("" if len(have) == 3 else f" (seeds {', '.join(str(s) for s, _ in have)} only)")
            lines.append(f"| {method} | {label} | {fmt(a)} | {seeds} | {st.mean(d):+.1f} | {st.stdev(b):.1f} | "
                         f"{up[0]:,.0f}; {up[1]:,.0f} ({raw_up[1]:,.0f}, {raw_up[1] / up[1]:.1f}× fewer) | {down[1]:,.0f} |")
    text = "\n".join(lines) + "\n"
    os.makedirs(os.path.join(ROOT, "results/compression"), exist_ok=True)
    with open(os.path.join(ROOT, "results/compression/table.md"), "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
