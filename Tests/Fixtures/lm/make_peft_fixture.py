#!/usr/bin/env python3
"""Reference fixture for pilot's LoRA adapters in PEFT format (Sources/PilotLM/LoRA), made once with
transformers + peft and committed under Tests/Fixtures/lm/peft-gqa-tied/; the Swift tests read it and need
no Python.

  make_peft_fixture.py

The base model is the committed tiny random Llama Tests/Fixtures/lm/tiny-gqa-tied (GQA 4/2 heads, tied
embeddings; make_lm_fixtures.py). peft's `get_peft_model` puts LoRA (r=4, lora_alpha=6, so scale 1.5) on
q, k, v, o, gate, up and down of both layers; lora_A and lora_B are then set to random NONZERO values (peft
initialises B to zero, which would make the adapter a no-op and hide a transposition or scale bug), and
`save_pretrained` writes adapter/ exactly as peft does (its README.md model card is dropped, and
base_model_name_or_path is made repository-relative). expected.json holds the input ids (B=2, T=12), the
logits of every position through PeftModel (unmerged: base(x) + scale·B(A(x))), and for information the
largest change the adapter makes to the base logits and peft's merge_and_unload() against the unmerged model.

Needs: torch (CPU), transformers (>= 5), peft (0.21), safetensors. Interpreter: ${PYTHON:-python3}."""
import json, os, shutil
import torch
from transformers import AutoModelForCausalLM
from peft import LoraConfig, PeftModel, get_peft_model

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", "..", ".."))   # HERE is Tests/Fixtures/lm
BASE_REL = "Tests/Fixtures/lm/tiny-gqa-tied"
OUT = os.path.join(REPO, "Tests", "Fixtures", "lm", "peft-gqa-tied")
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]

def sig7(x):
    return [float("%.7g" % v) for v in x]

def main():
    torch.set_num_threads(2)
    torch.manual_seed(15)
    base_dir = os.path.join(REPO, BASE_REL)
    base = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32).eval()
    g = torch.Generator().manual_seed(1515)
    ids = torch.randint(3, base.config.vocab_size, (2, 12), generator=g)
    with torch.no_grad():
        base_logits = base(ids).logits.clone()

    cfg = LoraConfig(r=4, lora_alpha=6, lora_dropout=0.0, bias="none", task_type="CAUSAL_LM",
                     target_modules=TARGETS)
    pm = get_peft_model(base, cfg)
    with torch.no_grad():
        for name, p in pm.named_parameters():
            if "lora_A" in name or "lora_B" in name:
                p.copy_(0.25 * torch.randn_like(p))
    pm.eval()
    adapter = os.path.join(OUT, "adapter")
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)
    pm.save_pretrained(adapter)
    readme = os.path.join(adapter, "README.md")
    if os.path.exists(readme):
        os.remove(readme)
    cpath = os.path.join(adapter, "adapter_config.json")
    with open(cpath) as f:
        c = json.load(f)
    c["base_model_name_or_path"] = BASE_REL
    with open(cpath, "w") as f:
        json.dump(c, f, indent=2, sort_keys=True)

    # reload from disk as a user would, so the reference is what the saved files mean
    fresh = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32).eval()
    loaded = PeftModel.from_pretrained(fresh, adapter).eval()
    with torch.no_grad():
        logits = loaded(ids).logits
        merged = loaded.merge_and_unload()(ids).logits
    exp = {
        "base": BASE_REL,
        "r": 4, "lora_alpha": 6,
        "input_ids": ids.tolist(),
        "logits": [[sig7(logits[b, t].tolist()) for t in range(ids.shape[1])] for b in range(ids.shape[0])],
        "max_change_from_base": float((logits - base_logits).abs().max()),
        "merged_vs_unmerged": float((merged - logits).abs().max()),
        "peft_version": __import__("peft").__version__,
        "transformers_version": __import__("transformers").__version__,
    }
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(exp, f)
    print(OUT, "adapter bytes:", os.path.getsize(os.path.join(adapter, "adapter_model.safetensors")))
    print("max |adapted - base| logit:", exp["max_change_from_base"])
    print("peft merged vs unmerged:", exp["merged_vs_unmerged"])

if __name__ == "__main__":
    main()
