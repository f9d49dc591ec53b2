#!/usr/bin/env python3
"""Golden values for RDPAccountant (Tests/PilotFederationTests/RDPAccountantTests.swift), from Opacus itself.

Rerun (writes Tests/Fixtures/federation/rdp_golden.json; pass another path to write elsewhere). Opacus needs
torch; a venv with the CPU build of torch will do (installing opacus there adds only opacus, scipy, opt_einsum):
    /tmp/hfref/venv/bin/pip install opacus          # or: pip install 'torch==2.13.0+cpu' opacus in a new venv
    /tmp/hfref/venv/bin/python Tests/Fixtures/federation/make_rdp_golden.py [OUT.json]

Reference: Opacus' RDPAccountant (opacus/accountants/rdp.py), whose history holds (noise_multiplier,
sample_rate, steps) and whose get_privacy_spent(delta) sums analysis.rdp.compute_rdp over the history and
converts with analysis.rdp.get_privacy_spent at its DEFAULT_ALPHAS. The history is set directly (what
step() builds, one merged entry per run of equal steps) rather than calling step() a thousand times.

Grid: q in {0.01, 0.05, 0.1, 0.5, 1.0} x sigma in {0.5, 0.8, 1.0, 2.0, 5.0} x steps in {1, 10, 100, 1000}
at delta = 1e-5; one point at delta = 1e-6; q = 0; and two mechanisms composed one after the other. The
per-step RDP at every order is kept for each (q, sigma), so a mismatch can be traced to an order.
"""
import json
import sys
import warnings
from importlib import metadata
from pathlib import Path

from opacus.accountants import RDPAccountant
from opacus.accountants.analysis import rdp as analysis

warnings.filterwarnings("ignore", message="Optimal order is the")  # the extremes of the grid hit the order range

OUT = Path(__file__).resolve().parent / "rdp_golden.json"   # beside this file, in Tests/Fixtures/federation
QS = [0.01, 0.05, 0.1, 0.5, 1.0]
SIGMAS = [0.5, 0.8, 1.0, 2.0, 5.0]
STEPS = [1, 10, 100, 1000]


def spent(history, delta):
    """[(q, sigma, steps), ...] composed in order -> (epsilon, best order) from Opacus' accountant."""
    acc = RDPAccountant()
    acc.history = [(sigma, q, steps) for q, sigma, steps in history]
    eps, order = acc.get_privacy_spent(delta=delta)
    return float(eps), float(order)


def point(history, delta):
    eps, order = spent(history, delta)
    return {"history": [{"q": q, "sigma": s, "steps": n} for q, s, n in history], "delta": delta,
            "epsilon": eps, "order": order}


def main(argv):
    out = Path(argv[1]) if len(argv) > 1 else OUT
    orders = [float(a) for a in RDPAccountant.DEFAULT_ALPHAS]
    points = [point([(q, s, n)], 1e-5) for q in QS for s in SIGMAS for n in STEPS]
    points.append(point([(0.01, 1.0, 1000)], 1e-6))
    points.append(point([(0.0, 1.0, 10)], 1e-5))
    points.append(point([(0.01, 1.0, 100), (0.1, 2.0, 50), (0.01, 1.0, 10)], 1e-5))
    per_step = [{"q": q, "sigma": s, "rdp": [float(r) for r in analysis.compute_rdp(q=q, noise_multiplier=s, steps=1, orders=orders)]}
                for q in QS for s in SIGMAS]
    doc = {"generator": "Tests/Fixtures/federation/make_rdp_golden.py", "reference": "opacus", "opacus_version": metadata.version("opacus"),
           "scipy_version": metadata.version("scipy"), "orders": orders, "points": points, "per_step_rdp": per_step}
    out.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {out}: {len(points)} points")


if __name__ == "__main__":
    main(sys.argv)
