#!/usr/bin/env python3
"""Writes Tests/Fixtures/model/tiny_ref.h5: the JAX reference step of ../shared/bench/jax_ref.py
at tiny shapes (same code, smaller CFG, lr 1e-2 so the three steps differ clearly), in the layout of
`jax_ref.py --dump-h5`. The Swift reference-loss test uses this fixture when the JAX venv is not available.
Usage: /tmp/bench-venv/bin/python Tests/Fixtures/model/make_model_fixture.py
"""
import json
import os
import sys

import numpy as np

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", ".."))   # the repository
sys.path.insert(0, os.path.join(ROOT, "..", "shared", "bench"))
import jax_ref  # noqa: E402

CFG = dict(jax_ref.CFG)
CFG.update(B=2, T=12, NV=4, NANS=4, DV=8, D=16, V=32, L=2, H=2, DH=8, F=24, R=4, ALPHA=8.0, AH=12, LR=1e-2)


def main():
    import h5py
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_platforms", "cpu")
    tr_np, fr_np = jax_ref.init_params(3, CFG)
    batch_np = jax_ref.make_batch(3, CFG)
    _, train_step = jax_ref.build(CFG)
    step = jax.jit(train_step)
    tr = jax.tree_util.tree_map(jnp.asarray, tr_np)
    fr = jax.tree_util.tree_map(jnp.asarray, fr_np)
    batch = jax.tree_util.tree_map(jnp.asarray, batch_np)
    opt = jax_ref.init_opt(tr)
    losses, parts = [], []
    for _ in range(3):
        tr, opt, loss, aux = step(tr, opt, fr, batch)
        losses.append(float(loss))
        parts.append([float(x) for x in aux])
    out = os.path.join(ROOT, "Tests", "Fixtures", "model", "tiny_ref.h5")
    with h5py.File(out, "w") as h:
        def put(prefix, x):
            if isinstance(x, dict):
                for k, v in x.items():
                    put(f"{prefix}/{k}", v)
            elif isinstance(x, list):
                for i, v in enumerate(x):
                    put(f"{prefix}/{i}", v)
            else:
                h.create_dataset(prefix, data=np.asarray(x))
        put("train", tr_np)
        put("frozen", fr_np)
        h.create_dataset("batch/hv", data=batch_np["hv"])
        h.create_dataset("batch/text", data=batch_np["text"].astype(np.int64))
        h.create_dataset("first3_loss", data=np.array(losses, np.float64))
        h.create_dataset("first3_ce_z_lb", data=np.array(parts, np.float64))
        h.attrs["cfg_json"] = json.dumps(CFG)
        h.attrs["adapter_order"] = ",".join(jax_ref.ADAPTER_ORDER)
    print(f"wrote {out}")
    print("first3_loss", [f"{x:.6f}" for x in losses])
    print("first3_ce_z_lb", [[f"{y:.6f}" for y in p] for p in parts])


if __name__ == "__main__":
    main()
