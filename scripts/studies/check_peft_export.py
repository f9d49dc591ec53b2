#!/usr/bin/env python3
"""Checks a PEFT adapter that pilot exported against transformers + peft.

  check_peft_export.py --base MODEL_DIR --adapter ADAPTER_DIR [--ours LOGITS.json] [--ids 1,2,3 ...] [--tol 1e-4]

Loads MODEL_DIR with AutoModelForCausalLM (float32) and the adapter with peft.PeftModel.from_pretrained, as a
user would, and
  1. checks that adapter_config.json loads as a LoraConfig without unknown keys and means what pilot meant:
     every LoraConfig field not in the file has peft's default, and r, lora_alpha, target_modules, bias,
     lora_dropout, fan_in_fan_out, use_dora/use_rslora are the plain-LoRA values;
  2. checks that every lora_A/lora_B tensor of the file was loaded into the model (no missing or unexpected keys);
  3. prints peft's logits for the token ids and, with --ours (a JSON {"input_ids": [[...]], "logits": [...]}
     of B·T·V values, as pilot's PEFTTests write it with PILOT_PEFT_CHECK_DIR, or the {"ids": [...], "logits": [...]}
     of the last position that `pilot model logits --adapter` writes), the largest difference;
     also peft's merge_and_unload() against the unmerged model. Exits 1 when a difference exceeds --tol.

Made for the adapters Tests/PilotModelTests/Decoder/PEFTTests.swift leaves in PILOT_PEFT_CHECK_DIR:
  PILOT_PEFT_CHECK_DIR=/tmp/peftcheck swift test -c release --skip-build --filter PilotModelTests.PEFTTests
  /tmp/hfref/venv/bin/python scripts/studies/check_peft_export.py --base Tests/Fixtures/lm/tiny-gqa-tied \\
      --adapter /tmp/peftcheck/tiny-gqa-tied-adapter --ours /tmp/peftcheck/tiny-gqa-tied-adapter/pilot_logits.json

Needs: torch (CPU), transformers (>= 5), peft (0.21), safetensors. Interpreter: ${PYTHON:-python3}."""
import argparse, dataclasses, json, logging, os, sys, warnings
import torch
from safetensors import safe_open
from transformers import AutoModelForCausalLM
import peft
from peft import LoraConfig, PeftModel

def check_config(adapter):
    with open(os.path.join(adapter, "adapter_config.json")) as f:
        raw = json.load(f)
    fields = {f.name: f for f in dataclasses.fields(LoraConfig)}
    unknown = sorted(set(raw) - set(fields))
    problems = []
    if unknown:
        problems.append("keys LoraConfig does not know: %s" % unknown)
    cfg = LoraConfig.from_pretrained(adapter)
    default = LoraConfig(r=cfg.r, lora_alpha=cfg.lora_alpha, target_modules=sorted(cfg.target_modules),
                         task_type="CAUSAL_LM", lora_dropout=0.0, bias="none",
                         base_model_name_or_path=cfg.base_model_name_or_path, inference_mode=True)
    for name in fields:
        if name in ("peft_version", "target_modules", "revision"):
            continue
        a, b = getattr(cfg, name), getattr(default, name)
        if a != b:
            problems.append("%s = %r, peft's plain LoRA has %r" % (name, a, b))
    if set(cfg.target_modules) != set(default.target_modules):
        problems.append("target_modules %r" % (cfg.target_modules,))
    print("adapter_config.json: r=%d lora_alpha=%s scale=%g target_modules=%s; %d keys, all known to peft %s: %s"
          % (cfg.r, cfg.lora_alpha, cfg.lora_alpha / cfg.r, sorted(cfg.target_modules), len(raw), peft.__version__,
             "yes" if not unknown else "NO"))
    return problems

def main():
    p = argparse.ArgumentParser()
    p.add_argument("--base", required=True)
    p.add_argument("--adapter", required=True)
    p.add_argument("--ours")
    p.add_argument("--ids", nargs="*", help="token id rows, comma-separated (default: --ours's input_ids, else 1,2,3,4,5)")
    p.add_argument("--tol", type=float, default=1e-4)
    a = p.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    logging.getLogger("peft").setLevel(logging.WARNING)

    problems = check_config(a.adapter)
    base = AutoModelForCausalLM.from_pretrained(a.base, dtype=torch.float32).eval()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = PeftModel.from_pretrained(base, a.adapter).eval()
    for w in caught:
        text = str(w.message)
        if "missing" in text.lower() or "unexpected" in text.lower() or "found" in text.lower():
            problems.append("peft warned: " + text.splitlines()[0])

    # every tensor of the file went into the model, unchanged
    state = model.state_dict()
    worst_load = 0.0
    with safe_open(os.path.join(a.adapter, "adapter_model.safetensors"), "pt") as f:
        names = list(f.keys())
        for k in names:
            mk = k.replace(".lora_A.weight", ".lora_A.default.weight").replace(".lora_B.weight", ".lora_B.default.weight")
            if mk not in state:
                problems.append("tensor %s did not load into the model (no %s)" % (k, mk))
                continue
            worst_load = max(worst_load, float((state[mk] - f.get_tensor(k)).abs().max()))
    lora_params = [k for k in state if ".lora_A." in k or ".lora_B." in k]
    if len(lora_params) != len(names):
        problems.append("the model has %d LoRA tensors, the file %d" % (len(lora_params), len(names)))
    print("adapter_model.safetensors: %d tensors, all loaded (max |model - file| %g)" % (len(names), worst_load))

    ours = None
    if a.ours:
        with open(a.ours) as f:
            ours = json.load(f)
    if a.ids:
        ids = torch.tensor([[int(x) for x in row.split(",")] for row in a.ids])
    elif ours and "input_ids" in ours:
        ids = torch.tensor(ours["input_ids"])
    elif ours:
        ids = torch.tensor([ours["ids"]])  # `pilot model logits`: one text, its last position only
    else:
        ids = torch.tensor([[1, 2, 3, 4, 5]])
    with torch.no_grad():
        logits = model(ids).logits.float()
        base_logits = None
        with model.disable_adapter():
            base_logits = model(ids).logits.float()
        merged = model.merge_and_unload()(ids).logits.float()
    print("peft logits [%s]: first %s; the adapter moves logits by up to %.4g"
          % (", ".join(map(str, logits.shape)), [round(v, 5) for v in logits.flatten()[:3].tolist()],
             float((logits - base_logits).abs().max())))
    dm = float((merged - logits).abs().max())
    print("peft merge_and_unload vs unmerged: max diff %.3g" % dm)
    if ours is not None:
        mine = torch.tensor(ours["logits"], dtype=torch.float32)
        if "input_ids" not in ours:
            logits, merged = logits[:, -1:], merged[:, -1:]
        if mine.numel() != logits.numel():
            problems.append("--ours has %d logits, peft gives %d" % (mine.numel(), logits.numel()))
        else:
            mine = mine.reshape(logits.shape)
            d = float((mine - logits).abs().max())
            print("pilot vs transformers+peft: max |logit difference| = %.3g over %d logits (limit %g); last position %.3g;"
                  " vs peft merged %.3g; largest |logit| %.3g"
                  % (d, logits.numel(), a.tol, float((mine[:, -1] - logits[:, -1]).abs().max()),
                     float((mine - merged).abs().max()), float(logits.abs().max())))
            if not d <= a.tol:
                problems.append("logits differ by %g > %g" % (d, a.tol))
    if problems:
        for m in problems:
            print("FAIL:", m)
        sys.exit(1)
    print("OK")

if __name__ == "__main__":
    main()
