#!/usr/bin/env python3
"""A seeded random-init Hugging Face Llama directory of a named shape, for memory and speed work at real
sizes (docs/performance.md, "Real sizes"). Needs numpy only; the weights mean nothing.

Writes what transformers' LlamaForCausalLM.save_pretrained writes for a bf16 model:
  config.json                          the keys LlamaConfig.to_dict() writes (torch_dtype "bfloat16")
  model-0000k-of-0000n.safetensors     the tensors in BF16 (or F32 with --dtype f32), at most --max-shard-size each
  model.safetensors.index.json         {"metadata": {"total_size": …}, "weight_map": {name: shard}}
  tokenizer.json, tokenizer_config.json  a copy of --tokenizer-from's, cut to the vocabulary (below)

    scripts/make_random_llama.py --preset llama2-7b /work/bigmodels/llama2-7b-random
    scripts/make_random_llama.py --preset smollm2-1.7b /work/bigmodels/smollm2-1.7b-random
    scripts/make_random_llama.py --hidden 64 --intermediate 128 --layers 2 --heads 4 --kv-heads 2 --vocab 300 OUT
    scripts/make_random_llama.py --preset llama2-7b --print-config -    # config.json and the parameter count only

Values: every matrix (embeddings, projections, head) is normal with std --std (0.02, transformers'
initializer_range), every RMSNorm weight is 1. Each tensor has its own generator, seeded by (--seed, its
index in the file order), and is drawn and converted in chunks of 2^24 values (float32 → bfloat16 by
round-to-nearest-even on the bits), so memory stays at a few hundred MB whatever the size and the bytes
depend only on the seed and the shape. Shards are written under a temporary name and renamed at the end.

Tokenizer: tokenizer.json and tokenizer_config.json of --tokenizer-from (default: the repository's
models/smollm2-135m-instruct, from scripts/get_smollm2.sh). When the vocabulary is smaller than the
tokenizer's, tokens with id >= vocab are dropped, and so is every merge that uses or produces one, so
every id the tokenizer can emit is a row of the embedding; special tokens above the vocabulary are an
error (they cannot be dropped silently).
"""
import argparse
import json
import os
import shutil
import struct
import sys

import numpy as np

# Shapes of released models (hidden, MLP, layers, heads, KV heads, vocab, tied, RoPE θ, RMS ε, positions).
PRESETS = {
    "smollm2-135m": dict(hidden=576, intermediate=1536, layers=30, heads=9, kv_heads=3, vocab=49152, tie=True,
                         rope_theta=100000.0, rms_eps=1e-5, max_position=8192),
    "smollm2-1.7b": dict(hidden=2048, intermediate=8192, layers=24, heads=32, kv_heads=32, vocab=49152, tie=True,
                         rope_theta=130000.0, rms_eps=1e-5, max_position=8192),
    # Llama-2-7B, the shape of Vicuna-7B v1.5 (LLaVA-1.5's LM)
    "llama2-7b": dict(hidden=4096, intermediate=11008, layers=32, heads=32, kv_heads=32, vocab=32000, tie=False,
                      rope_theta=10000.0, rms_eps=1e-5, max_position=4096),
}
CHUNK = 1 << 24


def parse_size(s):
    s = s.strip().upper()
    for unit, mul in (("GB", 10 ** 9), ("MB", 10 ** 6), ("KB", 10 ** 3), ("B", 1)):
        if s.endswith(unit):
            return int(float(s[: -len(unit)]) * mul)
    return int(s)


def args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("out", help="directory to write (must not exist, or be empty)")
    p.add_argument("--preset", choices=sorted(PRESETS), help="a named shape; the size options below override its values")
    for name, typ in (("hidden", int), ("intermediate", int), ("layers", int), ("heads", int), ("kv-heads", int),
                      ("vocab", int), ("rope-theta", float), ("rms-eps", float), ("max-position", int)):
        p.add_argument("--" + name, type=typ)
    p.add_argument("--tie", dest="tie", action="store_true", default=None, help="tie the head to the embedding")
    p.add_argument("--no-tie", dest="tie", action="store_false", help="an lm_head.weight of its own")
    p.add_argument("--dtype", choices=["bf16", "f32"], default="bf16", help="stored dtype (default bf16, as released)")
    p.add_argument("--std", type=float, default=0.02, help="std of every matrix (initializer_range)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-shard-size", default="2GB", help="largest shard (bytes, or with KB/MB/GB; default 2GB)")
    p.add_argument("--print-config", action="store_true",
                   help="print config.json and the parameter count and bytes, and write nothing")
    p.add_argument("--tokenizer-from", help="directory with tokenizer.json and tokenizer_config.json "
                   "(default: models/smollm2-135m-instruct of this repository)")
    a = p.parse_args()
    shape = dict(PRESETS[a.preset]) if a.preset else {}
    for k in ("hidden", "intermediate", "layers", "heads", "kv_heads", "vocab", "rope_theta", "rms_eps", "max_position", "tie"):
        v = getattr(a, k)
        if v is not None:
            shape[k] = v
    shape.setdefault("tie", False)
    shape.setdefault("rope_theta", 10000.0)
    shape.setdefault("rms_eps", 1e-5)
    shape.setdefault("max_position", 4096)
    missing = [k for k in ("hidden", "intermediate", "layers", "heads", "kv_heads", "vocab") if k not in shape]
    if missing:
        p.error("give --preset or every size: missing " + ", ".join("--" + m.replace("_", "-") for m in missing))
    for k in ("hidden", "intermediate", "layers", "heads", "kv_heads", "vocab"):
        if shape[k] < 1:
            p.error(f"--{k.replace('_', '-')} must be at least 1, not {shape[k]}")
    if shape["hidden"] % shape["heads"] or (shape["hidden"] // shape["heads"]) % 2:
        p.error(f"--hidden {shape['hidden']} must be --heads {shape['heads']} × an even head_dim")
    if shape["heads"] % shape["kv_heads"]:
        p.error(f"--heads {shape['heads']} must be a multiple of --kv-heads {shape['kv_heads']}")
    a.max_shard = parse_size(a.max_shard_size)
    if a.max_shard < 1:
        p.error("--max-shard-size must be positive")
    if a.tokenizer_from is None:
        a.tokenizer_from = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "models", "smollm2-135m-instruct")
    return a, shape


def config_json(s, dtype):
    """The keys transformers' LlamaConfig(...).to_dict() writes (4.4x), with the architecture."""
    head_dim = s["hidden"] // s["heads"]
    return {
        "architectures": ["LlamaForCausalLM"],
        "attention_bias": False,
        "attention_dropout": 0.0,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "head_dim": head_dim,
        "hidden_act": "silu",
        "hidden_size": s["hidden"],
        "initializer_range": 0.02,
        "intermediate_size": s["intermediate"],
        "max_position_embeddings": s["max_position"],
        "mlp_bias": False,
        "model_type": "llama",
        "num_attention_heads": s["heads"],
        "num_hidden_layers": s["layers"],
        "num_key_value_heads": s["kv_heads"],
        "pretraining_tp": 1,
        "rms_norm_eps": s["rms_eps"],
        "rope_scaling": None,
        "rope_theta": s["rope_theta"],
        "tie_word_embeddings": s["tie"],
        "torch_dtype": "bfloat16" if dtype == "bf16" else "float32",
        "transformers_version": "4.46.0",
        "use_cache": True,
        "vocab_size": s["vocab"],
    }


def tensors(s):
    """(name, shape, is_norm) in transformers' module order."""
    C, F, V = s["hidden"], s["intermediate"], s["vocab"]
    D = C // s["heads"]
    KVD = s["kv_heads"] * D
    out = [("model.embed_tokens.weight", (V, C), False)]
    for l in range(s["layers"]):
        p = f"model.layers.{l}."
        out += [(p + "self_attn.q_proj.weight", (C, C), False), (p + "self_attn.k_proj.weight", (KVD, C), False),
                (p + "self_attn.v_proj.weight", (KVD, C), False), (p + "self_attn.o_proj.weight", (C, C), False),
                (p + "mlp.gate_proj.weight", (F, C), False), (p + "mlp.up_proj.weight", (F, C), False),
                (p + "mlp.down_proj.weight", (C, F), False),
                (p + "input_layernorm.weight", (C,), True), (p + "post_attention_layernorm.weight", (C,), True)]
    out.append(("model.norm.weight", (C,), True))
    if not s["tie"]:
        out.append(("lm_head.weight", (V, C), False))
    return out


def to_bf16(x):
    """float32 → bfloat16 bits (uint16), round to nearest even (no NaN can occur here)."""
    u = x.view(np.uint32)
    return ((u + np.uint32(0x7FFF) + ((u >> np.uint32(16)) & np.uint32(1))) >> np.uint32(16)).astype("<u2")


def write_values(f, index, shape, is_norm, seed, std, dtype):
    n = int(np.prod(shape))
    if is_norm:
        one = np.ones(n, dtype=np.float32)
        f.write((to_bf16(one) if dtype == "bf16" else one.astype("<f4")).tobytes())
        return
    rng = np.random.default_rng([seed, index])
    done = 0
    while done < n:
        k = min(CHUNK, n - done)
        x = rng.standard_normal(k, dtype=np.float32)
        x *= np.float32(std)
        f.write((to_bf16(x) if dtype == "bf16" else x.astype("<f4")).tobytes())
        done += k


def cut_tokenizer(src_dir, vocab):
    """tokenizer.json / tokenizer_config.json of src_dir without the ids >= vocab and the merges that need them:
    (tokenizer, tokenizer config, tokens kept, tokens dropped, merges dropped). Exits on what cannot be cut."""
    with open(os.path.join(src_dir, "tokenizer.json"), encoding="utf-8") as fh:
        tok = json.load(fh)
    with open(os.path.join(src_dir, "tokenizer_config.json"), encoding="utf-8") as fh:
        tcfg = json.load(fh)
    model = tok.get("model", {})
    if model.get("type") != "BPE":
        sys.exit(f"{src_dir}/tokenizer.json: model.type {model.get('type')!r}; only a BPE tokenizer can be cut to a vocabulary")
    special_over = [t["content"] for t in tok.get("added_tokens", []) if t["id"] >= vocab]
    if special_over:
        sys.exit(f"{src_dir}/tokenizer.json: special tokens {special_over} have ids >= --vocab {vocab}; use a larger vocabulary")
    old = model["vocab"]
    kept = {t: i for t, i in old.items() if i < vocab}
    merges, dropped_merges = [], 0
    for m in model.get("merges", []):
        a, b = m.split(" ", 1) if isinstance(m, str) else m
        if a in kept and b in kept and (a + b) in kept:
            merges.append(m)
        else:
            dropped_merges += 1
    model["vocab"] = kept
    model["merges"] = merges
    if "added_tokens_decoder" in tcfg:
        tcfg["added_tokens_decoder"] = {k: v for k, v in tcfg["added_tokens_decoder"].items() if int(k) < vocab}
    return tok, tcfg, len(kept), len(old) - len(kept), dropped_merges


def main():
    a, s = args()
    if a.print_config:
        params = sum(int(np.prod(t[1])) for t in tensors(s))
        print(json.dumps(config_json(s, a.dtype), indent=2))
        print(f"parameters {params} bytes {params * (2 if a.dtype == 'bf16' else 4)}")
        return
    if os.path.exists(a.out) and os.listdir(a.out):
        sys.exit(f"{a.out} exists and is not empty; remove it or choose another directory")
    for f in ("tokenizer.json", "tokenizer_config.json"):
        if not os.path.isfile(os.path.join(a.tokenizer_from, f)):
            sys.exit(f"{a.tokenizer_from}/{f} is missing: give --tokenizer-from DIR with tokenizer.json and "
                     "tokenizer_config.json (scripts/get_smollm2.sh makes models/smollm2-135m-instruct)")
    tok, tcfg, kept, dropped, dropped_merges = cut_tokenizer(a.tokenizer_from, s["vocab"])
    tmp = a.out.rstrip("/") + f".tmp-{os.getpid()}"
    os.makedirs(tmp)
    try:
        elem = 2 if a.dtype == "bf16" else 4
        table = tensors(s)
        # greedy shards in file order, as transformers' shard_checkpoint does
        shards, current, size = [], [], 0
        for t in table:
            b = int(np.prod(t[1])) * elem
            if current and size + b > a.max_shard:
                shards.append(current)
                current, size = [], 0
            current.append(t)
            size += b
        shards.append(current)
        n = len(shards)
        weight_map, total, params, order = {}, 0, 0, {t[0]: i for i, t in enumerate(table)}
        for k, shard in enumerate(shards, 1):
            fname = f"model-{k:05d}-of-{n:05d}.safetensors"
            header, off = {"__metadata__": {"format": "pt"}}, 0
            for name, shape, _ in shard:
                b = int(np.prod(shape)) * elem
                header[name] = {"dtype": "BF16" if a.dtype == "bf16" else "F32", "shape": list(shape), "data_offsets": [off, off + b]}
                off += b
                weight_map[name] = fname
                params += int(np.prod(shape))
            total += off
            h = json.dumps(header, separators=(",", ":")).encode()
            h += b" " * ((8 - len(h) % 8) % 8)
            with open(os.path.join(tmp, fname), "wb") as f:
                f.write(struct.pack("<Q", len(h)) + h)
                for name, shape, is_norm in shard:
                    write_values(f, order[name], shape, is_norm, a.seed, a.std, a.dtype)
            print(f"{fname}: {len(shard)} tensors, {off / 1e6:,.1f} MB", flush=True)
        with open(os.path.join(tmp, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}, f, indent=2)
        with open(os.path.join(tmp, "config.json"), "w") as f:
            json.dump(config_json(s, a.dtype), f, indent=2)
        with open(os.path.join(tmp, "tokenizer.json"), "w", encoding="utf-8") as fh:
            json.dump(tok, fh, ensure_ascii=False, indent=2)
        with open(os.path.join(tmp, "tokenizer_config.json"), "w", encoding="utf-8") as fh:
            json.dump(tcfg, fh, ensure_ascii=False, indent=2)
        if os.path.exists(a.out):
            os.rmdir(a.out)
        os.rename(tmp, a.out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    print(f"{a.out}: {params:,} parameters ({params / 1e9:.2f}B) in {n} shard(s), {total / 1e9:.2f} GB {a.dtype}; "
          f"tokenizer: {kept} tokens" + (f" ({dropped} tokens and {dropped_merges} merges above the vocabulary dropped)" if dropped else ""))


if __name__ == "__main__":
    main()
