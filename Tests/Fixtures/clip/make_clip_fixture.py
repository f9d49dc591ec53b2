#!/usr/bin/env python3
"""Reference fixtures for pilot's CLIP vision tower (Sources/PilotLM/CLIP), made once with transformers and
committed under Tests/Fixtures/clip/; the Swift tests read them and need no Python.

  make_clip_fixture.py

Three tiny random-init towers, each saved with save_pretrained (config.json + model.safetensors, F32):
  vit-quickgelu   CLIPVisionModel: image 32, patch 8 (16 patches), hidden 64, 3 layers, 4 heads, MLP 128,
                  quick_gelu (CLIP's own activation); transformers 5 saves it without a name prefix
  vit-gelu        CLIPVisionModel: image 24, patch 6 (16 patches), hidden 32, 2 layers, 2 heads, MLP 48,
                  exact (erf) gelu, layer_norm_eps 1e-6
  clipmodel       a whole CLIPModel (vision + a tiny text tower), the layout of the Hub's openai/clip-vit-*
                  checkpoints that LLaVA loads: config.json has vision_config, tensors are vision_model.*
Every weight is random, LayerNorm weights non-unit and biases nonzero (transformers' init would hide a norm
or bias bug). expected.json holds the input pixels [B=2, 3, H, W] (already normalised, as the processor
would give them) and transformers' outputs as float32 little-endian base64:
  penultimate_patch  hidden_states[-2][:, 1:]   [B, P, hidden]   what LLaVA feeds its projector
                                                                 (vision_feature_layer -2, "patch" select)
  last_cls_patch     hidden_states[-1]          [B, P+1, hidden] (the last layer with CLS, no post_layernorm)
  first_patch        hidden_states[0][:, 1:]    [B, P, hidden]   (embeddings after pre_layrnorm)

Needs: torch (CPU), transformers (>= 5), safetensors. Interpreter: ${PYTHON:-python3}."""
import base64, json, os, shutil
import numpy as np
import torch
from transformers import CLIPConfig, CLIPModel, CLIPVisionConfig, CLIPVisionModel

ROOT = os.path.dirname(os.path.abspath(__file__))   # Tests/Fixtures/clip, where this file lives

def b64(t):
    return base64.b64encode(t.detach().to(torch.float32).contiguous().numpy().astype("<f4").tobytes()).decode("ascii")

def randomise(m):
    with torch.no_grad():
        for name, p in m.named_parameters():
            if "layer_norm" in name or "layrnorm" in name or "layernorm" in name:
                p.copy_((1.0 + 0.3 * torch.randn_like(p)) if name.endswith("weight") else 0.1 * torch.randn_like(p))
            elif name.endswith("bias"):
                p.copy_(0.1 * torch.randn_like(p))
            elif "embedding" in name:
                p.copy_(0.5 * torch.randn_like(p))
            else:
                p.copy_(0.15 * torch.randn_like(p))

def write(name, model, vision, cfg, seed):
    d = os.path.join(ROOT, name)
    shutil.rmtree(d, ignore_errors=True)
    model.save_pretrained(d)
    g = torch.Generator().manual_seed(seed)
    pixels = torch.randn(2, 3, cfg.image_size, cfg.image_size, generator=g)
    with torch.no_grad():
        hs = vision(pixel_values=pixels, output_hidden_states=True).hidden_states
    assert len(hs) == cfg.num_hidden_layers + 1
    exp = {
        "image_size": cfg.image_size, "patch_size": cfg.patch_size, "hidden_size": cfg.hidden_size,
        "batch": 2, "patches": (cfg.image_size // cfg.patch_size) ** 2,
        "pixels_f32le_base64": b64(pixels),
        "penultimate_patch_f32le_base64": b64(hs[-2][:, 1:]),
        "last_cls_patch_f32le_base64": b64(hs[-1]),
        "first_patch_f32le_base64": b64(hs[0][:, 1:]),
        "transformers_version": __import__("transformers").__version__,
    }
    with open(os.path.join(d, "expected.json"), "w") as f:
        json.dump(exp, f)
    size = sum(os.path.getsize(os.path.join(d, x)) for x in os.listdir(d))
    print(d, size, "bytes; |penultimate| max", float(hs[-2][:, 1:].abs().max()))
    return size

def main():
    torch.set_num_threads(2)
    total = 0
    torch.manual_seed(1)
    c = CLIPVisionConfig(image_size=32, patch_size=8, hidden_size=64, num_hidden_layers=3, num_attention_heads=4,
                         intermediate_size=128, hidden_act="quick_gelu", layer_norm_eps=1e-5)
    m = CLIPVisionModel(c).eval(); randomise(m)
    total += write("vit-quickgelu", m, m, c, 101)

    torch.manual_seed(2)
    c = CLIPVisionConfig(image_size=24, patch_size=6, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=48, hidden_act="gelu", layer_norm_eps=1e-6)
    m = CLIPVisionModel(c).eval(); randomise(m)
    total += write("vit-gelu", m, m, c, 102)

    torch.manual_seed(3)
    vc = dict(image_size=16, patch_size=4, hidden_size=32, num_hidden_layers=3, num_attention_heads=4,
              intermediate_size=64, hidden_act="quick_gelu", layer_norm_eps=1e-5)
    tc = dict(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
              max_position_embeddings=16)
    cfg = CLIPConfig(vision_config=vc, text_config=tc, projection_dim=16)
    m = CLIPModel(cfg).eval(); randomise(m)
    total += write("clipmodel", m, m.vision_model, cfg.vision_config, 103)
    print("total", total, "bytes")

if __name__ == "__main__":
    main()
