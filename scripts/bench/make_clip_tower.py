#!/usr/bin/env python3
"""A random-init CLIP vision tower directory (config.json + model.safetensors, F32) in the layout
transformers' CLIPVisionModel.save_pretrained writes, for timing only (scripts/bench/bench_vision_cache.sh).
Needs numpy only. Its outputs mean nothing; the fixtures that check pilot's tower against transformers are
Tests/Fixtures/clip/ (make_clip_fixture.py).

    make_clip_tower.py OUT --image-size 112 --patch-size 14 --hidden 384 --layers 6 --heads 6 --mlp 1536
"""
import argparse
import json
import os
import struct

import numpy as np

p = argparse.ArgumentParser()
p.add_argument("out")
p.add_argument("--image-size", type=int, default=112)
p.add_argument("--patch-size", type=int, default=14)
p.add_argument("--hidden", type=int, default=384)
p.add_argument("--layers", type=int, default=6)
p.add_argument("--heads", type=int, default=6)
p.add_argument("--mlp", type=int, default=1536)
p.add_argument("--seed", type=int, default=0)
a = p.parse_args()

rng = np.random.default_rng(a.seed)
C, F, S = a.hidden, a.mlp, (a.image_size // a.patch_size) ** 2 + 1
t = {}


def normal(*shape, std=0.02):
    return (rng.standard_normal(shape) * std).astype(np.float32)


def norm(name):
    t[name + ".weight"] = (1 + normal(C, std=0.1)).astype(np.float32)
    t[name + ".bias"] = normal(C)


t["embeddings.class_embedding"] = normal(C)
t["embeddings.patch_embedding.weight"] = normal(C, 3, a.patch_size, a.patch_size)
t["embeddings.position_embedding.weight"] = normal(S, C)
norm("pre_layrnorm")
norm("post_layernorm")
for l in range(a.layers):
    p_ = f"encoder.layers.{l}."
    norm(p_ + "layer_norm1")
    norm(p_ + "layer_norm2")
    for n in ["q", "k", "v", "out"]:
        t[p_ + f"self_attn.{n}_proj.weight"] = normal(C, C, std=C ** -0.5)
        t[p_ + f"self_attn.{n}_proj.bias"] = normal(C)
    t[p_ + "mlp.fc1.weight"] = normal(F, C, std=C ** -0.5)
    t[p_ + "mlp.fc1.bias"] = normal(F)
    t[p_ + "mlp.fc2.weight"] = normal(C, F, std=F ** -0.5)
    t[p_ + "mlp.fc2.bias"] = normal(C)

os.makedirs(a.out, exist_ok=True)
header, offset, blobs = {"__metadata__": {"format": "pt"}}, 0, []
for name in sorted(t):
    b = t[name].astype("<f4").tobytes()
    header[name] = {"dtype": "F32", "shape": list(t[name].shape), "data_offsets": [offset, offset + len(b)]}
    offset += len(b)
    blobs.append(b)
h = json.dumps(header, separators=(",", ":")).encode()
h += b" " * ((8 - len(h) % 8) % 8)
with open(os.path.join(a.out, "model.safetensors"), "wb") as f:
    f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
config = {"architectures": ["CLIPVisionModel"], "model_type": "clip_vision_model", "hidden_act": "quick_gelu",
          "hidden_size": C, "intermediate_size": F, "image_size": a.image_size, "patch_size": a.patch_size,
          "num_attention_heads": a.heads, "num_hidden_layers": a.layers, "num_channels": 3, "layer_norm_eps": 1e-5,
          "attention_dropout": 0.0, "initializer_factor": 1.0, "initializer_range": 0.02, "projection_dim": 512}
with open(os.path.join(a.out, "config.json"), "w") as f:
    json.dump(config, f, indent=2)
print(f"{a.out}: {a.layers} layers of {C}, {S} tokens, {sum(v.size for v in t.values()) / 1e6:.1f}M parameters")
