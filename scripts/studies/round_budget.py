#!/usr/bin/env python3
"""The round-budget claims of docs/results.md (issue #19): Pilot against every other method, round by round.

    scripts/studies/round_budget.py BY_ROUND_CSV [REFERENCE]

BY_ROUND_CSV is the tidy CSV of `pilot report --by-round` (results/tables/rounds-<scenario>-by-round.csv).
For `avg` and then every task average, one Markdown table: a row per round, a column per other method,
each cell the difference REFERENCE − method (×100, REFERENCE defaults to pilot), followed by the larger
of the two sample standard deviations over seeds in parentheses. A cell is marked

    ▲  REFERENCE is ahead by more than that standard deviation,
    ▼  REFERENCE is behind by more than it,

and left unmarked when the difference is within one standard deviation, or when either method has a
single seed at that round (no spread, so no claim: the cell then shows `n=1`). Standard library only.
"""
import csv
import sys
from collections import defaultdict


def main(path, reference="pilot"):
    rows = list(csv.DictReader(open(path, encoding="utf-8")))
    if not rows:
        sys.exit(f"{path}: no rows (did pilot report --by-round find any runs?)")
    methods = []
    for r in rows:
        if r["method"] not in methods:
            methods.append(r["method"])
    if reference not in methods:
        sys.exit(f"{path}: no method '{reference}' (methods: {', '.join(methods)})")
    tasks = []
    for r in rows:
        if r["task"] not in tasks:
            tasks.append(r["task"])
    tasks = [t for t in tasks if t == "all"] + [t for t in tasks if t != "all"]
    value = defaultdict(dict)   # (task, round) -> method -> (mean, std or None, n)
    for r in rows:
        std = float(r["std"]) if r["std"] else None
        value[(r["task"], int(r["round"]))][r["method"]] = (float(r["mean"]), std, int(r["n"]))
    others = [m for m in methods if m != reference]
    out = []
    for task in tasks:
        rounds = sorted({rd for (t, rd) in value if t == task})
        out.append(f"**{'avg' if task == 'all' else task + ' avg'}**: {reference} − method (larger seed std)")
        out.append("")
        out.append("| round | " + " | ".join(f"vs {m}" for m in others) + " |")
        out.append("|--:|" + "--:|" * len(others))
        for rd in rounds:
            cells = []
            here = value[(task, rd)]
            for m in others:
                if reference not in here or m not in here:
                    cells.append("")
                    continue
                (a, sa, na), (b, sb, nb) = here[reference], here[m]
                d = (a - b) * 100
                d = 0.0 if round(d, 1) == 0 else d   # no "-0.0"
                if sa is None or sb is None:
                    cells.append(f"{d:+.1f} (n=1)")
                    continue
                s = max(sa, sb) * 100
                mark = " ▲" if d > s else " ▼" if -d > s else ""
                cells.append(f"{d:+.1f} ({s:.1f}){mark}")
            out.append(f"| {rd} | " + " | ".join(cells) + " |")
        out.append("")
    print("\n".join(out).rstrip("\n"))


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    main(*sys.argv[1:])
