#!/usr/bin/env python3
"""Reference fixtures for the Llama-family engine (Sources/PilotLM/Llama), made once with transformers and
committed under Tests/Fixtures/lm/; the Swift tests read them and need no Python.

  make_lm_fixtures.py            tiny random-init models: Tests/Fixtures/lm/tiny-<variant>/
  make_lm_fixtures.py --smollm2 DIR   Tests/Fixtures/lm/smollm2_reference.json from a HF SmolLM2 directory

Needs: torch (CPU), transformers (>= 5), safetensors, numpy. Interpreter: ${PYTHON:-python3}.

Every tiny model has random, non-unit norm weights (transformers initialises norms to 1, which would hide a
norm bug) and is saved in F32 (one variant also in BF16). expected.json holds the input ids (B=2, T=12), the
logits of every position, and transformers' greedy generate() of 10 new tokens from a prompt."""
import argparse, base64, json, os, sys
import numpy as np
import torch
from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM
from safetensors.torch import save_file

ROOT = os.path.dirname(os.path.abspath(__file__))   # Tests/Fixtures/lm, where this file lives

def sig7(x):
    return [float("%.7g" % v) for v in x]

BASE = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
            head_dim=16, vocab_size=256, max_position_embeddings=128, rms_norm_eps=1e-5,
            bos_token_id=1, eos_token_id=2, pad_token_id=0)

VARIANTS = {
    # GQA (2 KV heads for 4 query heads), tied embeddings, theta 10000
    "gqa-tied": (LlamaConfig, LlamaForCausalLM, dict(num_key_value_heads=2, tie_word_embeddings=True,
                                                     rope_theta=10000.0)),
    # MHA (KV heads = heads), separate lm_head, theta 500000 (Llama 3 style, no scaling)
    "mha-untied": (LlamaConfig, LlamaForCausalLM, dict(num_key_value_heads=4, tie_word_embeddings=False,
                                                       rope_theta=500000.0)),
    # attention_bias on: q/k/v/o all carry a bias
    "attn-bias": (LlamaConfig, LlamaForCausalLM, dict(num_key_value_heads=2, tie_word_embeddings=False,
                                                      attention_bias=True, rope_theta=10000.0)),
    # Qwen2: q/k/v bias, no o bias, theta 1e6
    "qwen2": (Qwen2Config, Qwen2ForCausalLM, dict(num_key_value_heads=2, tie_word_embeddings=True,
                                                  rope_theta=1000000.0, use_sliding_window=False)),
}

def build(cfg_cls, model_cls, extra, seed):
    torch.manual_seed(seed)
    kw = dict(BASE); kw.update(extra)
    theta = kw.pop("rope_theta")
    cfg = cfg_cls(**kw, rope_parameters={"rope_type": "default", "rope_theta": theta})
    m = model_cls(cfg).eval()
    with torch.no_grad():
        for name, p in m.named_parameters():
            if "norm" in name:
                p.copy_(1.0 + 0.5 * torch.randn_like(p))
            elif name.endswith("bias"):
                p.copy_(0.1 * torch.randn_like(p))
            else:
                p.copy_(0.08 * torch.randn_like(p))
    return cfg, m

def state_for_save(m, dtype):
    sd = {k: v.detach().to(dtype).contiguous() for k, v in m.state_dict().items()}
    if m.config.tie_word_embeddings:
        sd.pop("lm_head.weight", None)
    return sd

def reference(m, seed):
    g = torch.Generator().manual_seed(seed + 1)
    ids = torch.randint(3, m.config.vocab_size, (2, 12), generator=g)
    with torch.no_grad():
        logits = m(ids).logits  # [B, T, V]
        prompt = ids[:1, :6]
        out = m.generate(prompt, max_new_tokens=10, min_new_tokens=10, do_sample=False,
                         eos_token_id=None, pad_token_id=0)
    return {
        "input_ids": ids.tolist(),
        "logits": [[sig7(logits[b, t].tolist()) for t in range(ids.shape[1])] for b in range(ids.shape[0])],
        "prompt_ids": prompt[0].tolist(),
        "greedy_new_ids": out[0, prompt.shape[1]:].tolist(),
    }

def write_dir(name, cfg, m, sd, extra_meta):
    d = os.path.join(ROOT, "tiny-" + name)
    os.makedirs(d, exist_ok=True)
    cfg.save_pretrained(d)  # config.json as transformers writes it
    save_file(sd, os.path.join(d, "model.safetensors"), metadata={"format": "pt"})
    exp = reference(m, 1000 + len(name))
    exp.update(extra_meta)
    with open(os.path.join(d, "expected.json"), "w") as f:
        json.dump(exp, f)
    print(d, os.path.getsize(os.path.join(d, "model.safetensors")), "bytes")

def tiny():
    torch.set_num_threads(2)
    for i, (name, (cc, mc, extra)) in enumerate(VARIANTS.items()):
        cfg, m = build(cc, mc, extra, seed=i + 1)
        write_dir(name, cfg, m, state_for_save(m, torch.float32), {"variant": name})
    # BF16 storage: the gqa-tied architecture with weights rounded to bf16; the reference is the f32 model
    # holding exactly those rounded values, so the test checks the bf16 -> f32 conversion path.
    cc, mc, extra = VARIANTS["gqa-tied"]
    cfg, m = build(cc, mc, extra, seed=11)
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(p.to(torch.bfloat16).to(torch.float32))
    cfg.dtype = "bfloat16"
    write_dir("bf16", cfg, m, state_for_save(m, torch.bfloat16), {"variant": "bf16"})

def smollm2(model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    torch.set_num_threads(2)
    m = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    tok = AutoTokenizer.from_pretrained(model_dir)
    raw = ["The capital of France is",
           "def fibonacci(n):\n    if n < 2:\n        return n\n    return",
           "In 1969, 3 astronauts flew 384400 km to the Moon and"]
    res = {"raw": [], "chat": []}
    for text in raw:
        ids = tok(text, return_tensors="pt", add_special_tokens=False).input_ids
        with torch.no_grad():
            lg = m(ids).logits[0, -1].to(torch.float32).numpy().astype("<f4")
        res["raw"].append({"text": text, "ids": ids[0].tolist(),
                           "logits_f32le_base64": base64.b64encode(lg.tobytes()).decode("ascii"),
                           "argmax": int(lg.argmax())})
    for q in ["What is the capital of France?", "Write one sentence about the ocean."]:
        ids = tok.apply_chat_template([{"role": "user", "content": q}], add_generation_prompt=True,
                                      return_tensors="pt", return_dict=True)["input_ids"]
        with torch.no_grad():
            g = m.generate(ids, max_new_tokens=32, do_sample=False,
                           eos_token_id=m.config.eos_token_id, pad_token_id=m.config.eos_token_id)
        new = g[0, ids.shape[1]:].tolist()
        res["chat"].append({"question": q, "prompt_ids": ids[0].tolist(), "greedy_ids": new,
                            "greedy_text": tok.decode(new, skip_special_tokens=True)})
    res["eos_token_id"] = m.config.eos_token_id
    out = os.path.join(ROOT, "smollm2_reference.json")
    with open(out, "w") as f:
        json.dump(res, f)
    print(out, os.path.getsize(out), "bytes")
    for c in res["chat"]:
        print(repr(c["greedy_text"]), len(c["greedy_ids"]))

if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--smollm2")
    a = p.parse_args()
    if a.smollm2:
        smollm2(a.smollm2)
    else:
        tiny()
