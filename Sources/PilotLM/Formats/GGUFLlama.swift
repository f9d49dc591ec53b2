import Foundation
import PilotCore
import PilotTensor

/// A llama-architecture GGUF file seen through Hugging Face names and layout, so the Llama loader and
/// the importer read it like any safetensors checkpoint. llama.cpp's converter permutes the rows of
/// q_proj and k_proj for its RoPE (`w.reshape(n_head, 2, D/2, in).swapaxes(1, 2)`, pairing rows (2i, 2i+1)
/// instead of Hugging Face's (i, i + D/2)); `readFloat32` undoes that, as transformers' GGUF loader does
/// (docs/design.md §9). Without it the model still gives a plausible top-1 while its logits are off by up to 6.
public final class GGUFLlamaSource: TensorSource {
    public let gguf: GGUFFile
    public var path: String { gguf.path }
    public let tensorInfos: [TensorInfo]
    let ggufName: [String: String]
    let heads: Int, kvHeads: Int

    /// GGUF tensor kinds of a block → Hugging Face names (one table, beside the loader that uses it).
    public static let blockNames: [String: String] = [
        "attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm",
        "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
        "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj",
    ]
    public static let topNames: [String: String] = [
        "token_embd.weight": "model.embed_tokens.weight", "output_norm.weight": "model.norm.weight", "output.weight": "lm_head.weight",
    ]

    public init(file: GGUFFile) throws {
        gguf = file
        let arch = try file.string("general.architecture")
        guard arch == "llama" else {
            throw PilotError.invalidArgument("\(file.path): GGUF architecture '\(arch)' is not supported; pilot imports GGUF files of architecture 'llama' (for Qwen2 and others, import the Hugging Face safetensors directory instead)")
        }
        heads = try file.int("llama.attention.head_count")
        kvHeads = (try? file.int("llama.attention.head_count_kv")) ?? heads
        var infos: [TensorInfo] = [], names: [String: String] = [:]
        for t in file.tensorInfos {
            let hf: String
            if let top = Self.topNames[t.name] { hf = top } else {
                let parts = t.name.split(separator: ".").map(String.init)
                guard parts.count == 4, parts[0] == "blk", let layer = Int(parts[1]), let kind = Self.blockNames[parts[2]], parts[3] == "weight" else {
                    throw PilotError.invalidArgument("\(file.path): tensor '\(t.name)' is not part of a llama model pilot knows (expected token_embd, output_norm, output and blk.N.{\(Self.blockNames.keys.sorted().joined(separator: ","))}.weight)")
                }
                hf = "model.layers.\(layer).\(kind).weight"
            }
            if let other = names[hf] {
                throw PilotError.invalidArgument("\(file.path): tensors '\(other)' and '\(t.name)' are both \(hf); the file is corrupt")
            }
            names[hf] = t.name
            infos.append(TensorInfo(name: hf, shape: t.shape, dtype: t.dtype))
        }
        tensorInfos = infos
        ggufName = names
    }

    public func info(_ name: String) -> TensorInfo? {
        guard let g = ggufName[name], let t = gguf.info(g) else { return nil }
        return TensorInfo(name: name, shape: t.shape, dtype: t.dtype)
    }

    public func readFloat32(_ name: String, into out: UnsafeMutableBufferPointer<Float>) throws {
        guard let g = ggufName[name] else { throw PilotError.notFound(file: path, object: name) }
        try gguf.readFloat32(g, into: out)
        guard let shape = gguf.info(g)?.shape else { return }
        if name.hasSuffix("self_attn.q_proj.weight") { try Self.unpermute(out, heads: heads, shape: shape, name: name, path: path) }
        if name.hasSuffix("self_attn.k_proj.weight") { try Self.unpermute(out, heads: kvHeads, shape: shape, name: name, path: path) }
    }

    /// A Q8_0 tensor read as q8 is copied block for block (rows of q and k put back in Hugging Face's
    /// order, whole rows of blocks at a time), so the values are exactly the file's; anything else goes
    /// through Float32.
    public func readEncoded(_ name: String, as dtype: BaseDType, into out: UnsafeMutableRawBufferPointer) throws {
        guard let g = ggufName[name], let t = gguf.info(g) else { throw PilotError.notFound(file: path, object: name) }
        guard t.dtype == .q8_0, dtype == .q8, t.shape.count == 2 else { return try encodeFromFloat32(name, as: dtype, into: out) }
        let raw = try gguf.rawBytes(g)
        guard out.count == raw.count else {
            throw PilotError.invalidArgument("\(path): tensor '\(name)' in q8 takes \(raw.count) bytes, the destination \(out.count)")
        }
        let heads = name.hasSuffix("self_attn.q_proj.weight") ? self.heads : name.hasSuffix("self_attn.k_proj.weight") ? kvHeads : 0
        guard heads > 0 else { out.copyMemory(from: raw); return }
        let rows = t.shape[0], rowBytes = raw.count / rows
        guard rows % (2 * heads) == 0 else {
            throw PilotError.invalidArgument("\(path): tensor '\(name)' of shape \(t.shape) does not split into \(heads) heads of even size")
        }
        let d = rows / heads, half = d / 2
        for h in 0..<heads {
            for i in 0..<half {
                for j in 0..<2 {
                    let from = h * d + 2 * i + j, to = h * d + j * half + i
                    (out.baseAddress! + to * rowBytes).copyMemory(from: raw.baseAddress! + from * rowBytes, byteCount: rowBytes)
                }
            }
        }
    }

    /// Undoes llama.cpp's row order within each head: stored row h·D + 2i + j is Hugging Face row
    /// h·D + j·D/2 + i (j ∈ {0, 1}), i.e. `w.reshape(heads, D/2, 2, in).swapaxes(1, 2)`.
    static func unpermute(_ w: UnsafeMutableBufferPointer<Float>, heads: Int, shape: [Int], name: String, path: String) throws {
        guard shape.count == 2, heads > 0, heads <= shape[0], shape[0] % (2 * heads) == 0 else {
            throw PilotError.invalidArgument("\(path): tensor '\(name)' of shape \(shape) does not split into \(heads) heads of even size")
        }
        let rows = shape[0], cols = shape[1], d = rows / heads, half = d / 2
        let copy = Array(w)
        copy.withUnsafeBufferPointer { src in
            for h in 0..<heads {
                for i in 0..<half {
                    for j in 0..<2 {
                        let from = (h * d + 2 * i + j) * cols, to = (h * d + j * half + i) * cols
                        for c in 0..<cols { w[to + c] = src[from + c] }
                    }
                }
            }
        }
    }

    /// The Hugging Face `config.json` of the model from the GGUF metadata: the keys and values that
    /// refs/gguf_to_hf.py writes for LlamaForCausalLM (numbers as `Int` or `Double`, nested `rope_parameters`).
    /// Rope scaling is refused: pilot's Llama implements plain RoPE only.
    public func huggingFaceConfig() throws -> [String: Any] {
        let f = gguf
        let hidden = try f.int("llama.embedding_length")
        if let type = try? f.string("llama.rope.scaling.type"), type != "none" {
            throw PilotError.invalidArgument("\(path): llama.rope.scaling.type is '\(type)'; pilot implements plain RoPE only, so this model cannot be imported")
        }
        let theta = (try? f.float("llama.rope.freq_base")) ?? 10000.0
        let vocab = try (try? f.int("llama.vocab_size")) ?? f.strings("tokenizer.ggml.tokens").count
        var cfg: [String: Any] = [
            "architectures": ["LlamaForCausalLM"], "model_type": "llama",
            "hidden_size": hidden, "intermediate_size": try f.int("llama.feed_forward_length"),
            "num_hidden_layers": try f.int("llama.block_count"),
            // A zero or negative head count is refused by LlamaConfig.validate; here it must not divide.
            "num_attention_heads": heads, "num_key_value_heads": kvHeads, "head_dim": heads > 0 ? hidden / heads : 0,
            "max_position_embeddings": try f.int("llama.context_length"),
            "rms_norm_eps": try f.float("llama.attention.layer_norm_rms_epsilon"),
            "rope_theta": theta, "rope_parameters": ["rope_type": "default", "rope_theta": theta] as [String: Any],
            "vocab_size": vocab, "hidden_act": "silu", "attention_bias": false, "mlp_bias": false,
            "attention_dropout": 0.0, "initializer_range": 0.02,
            "tie_word_embeddings": gguf.info("output.weight") == nil,
            "torch_dtype": "float32", "dtype": "float32", "use_cache": true,
        ]
        for (k, g) in [("bos_token_id", "tokenizer.ggml.bos_token_id"), ("eos_token_id", "tokenizer.ggml.eos_token_id"),
                       ("pad_token_id", "tokenizer.ggml.padding_token_id")] {
            if let v = try? f.int(g) { cfg[k] = v }
        }
        return cfg
    }

    /// `huggingFaceConfig()` as the bytes of a config.json (pretty-printed, keys sorted).
    public func huggingFaceConfigJSON() throws -> Data {
        try JSONSerialization.data(withJSONObject: try huggingFaceConfig(), options: [.prettyPrinted, .sortedKeys])
    }
}

extension LlamaWeights {
    /// A llama-architecture GGUF file's config (from its metadata) and weights (dequantized to Float32).
    public static func load(gguf path: String) throws -> (LlamaConfig, LlamaWeights) {
        let source = try GGUFLlamaSource(file: try GGUFFile(path: path))
        let config = try LlamaConfig.decode(json: try source.huggingFaceConfigJSON(), file: path)
        return (config, try LlamaWeights(config: config, source: source))
    }
}
