import Foundation
import Testing
import PilotCore
import PilotLM
import PilotTestSupport

@Suite("Llama config and weights refusals")
struct LlamaConfigTests {
    nonisolated(unsafe) static let base: [String: Any] = [
        "model_type": "llama", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 256, "rms_norm_eps": 1e-5,
        "hidden_act": "silu", "eos_token_id": [2, 7],
    ]

    static func decode(_ changes: [String: Any]) throws -> LlamaConfig {
        var d = base
        for (k, v) in changes { d[k] = v }
        return try LlamaConfig.decode(json: try JSONSerialization.data(withJSONObject: d), file: "x/config.json")
    }

    static func refusal(_ changes: [String: Any]) -> String {
        do { _ = try decode(changes); return "" } catch { return "\(error)" }
    }

    @Test("defaults: head_dim = hidden/heads, KV heads = heads, eos as a list or an int, rope_theta in rope_parameters")
    func defaults() throws {
        var c = try Self.decode([:])
        #expect(c.headDim == 16 && c.numKeyValueGroups == 2 && c.eosTokenIDs == [2, 7] && c.ropeTheta == 10000)
        c = try Self.decode(["num_key_value_heads": NSNull(), "eos_token_id": 5, "rope_parameters": ["rope_type": "default", "rope_theta": 1e5]])
        #expect(c.numKeyValueHeads == 4 && c.eosTokenIDs == [5] && c.ropeTheta == 1e5)
        c = try Self.decode(["model_type": "qwen2", "use_sliding_window": false, "sliding_window": 4096, "rope_theta": 1e6])
        #expect(c.hasQKVBias && !c.hasOBias && c.ropeTheta == 1e6)
        let smol = try LlamaConfig.load(directory: LMFixtures.path("tiny-gqa-tied"))
        let again = try JSONDecoder().decode(LlamaConfig.self, from: try JSONEncoder().encode(smol))
        #expect(again == smol)
    }

    @Test("unsupported configs are refused naming the key and the value")
    func refusals() {
        let cases: [([String: Any], [String])] = [
            (["rope_scaling": ["rope_type": "llama3", "factor": 8.0]], ["rope_scaling", "llama3"]),
            (["rope_scaling": ["type": "linear", "factor": 2.0]], ["rope_scaling", "linear"]),
            (["rope_parameters": ["rope_type": "yarn", "rope_theta": 1e4]], ["rope_type", "yarn"]),
            (["model_type": "qwen2", "use_sliding_window": true, "sliding_window": 4096], ["use_sliding_window", "true"]),
            (["sliding_window": 4096], ["sliding_window", "4096"]),
            (["model_type": "qwen2", "layer_types": ["full_attention", "sliding_attention"]], ["layer_types", "sliding_attention"]),
            (["model_type": "mistral"], ["model_type", "mistral", "llama"]),
            (["model_type": "gemma"], ["model_type", "gemma"]),
            (["hidden_act": "gelu"], ["hidden_act", "gelu", "silu"]),
            (["mlp_bias": true], ["mlp_bias"]),
            (["num_key_value_heads": 3], ["num_key_value_heads", "3"]),
            (["hidden_size": "wide"], ["hidden_size"]),
        ]
        for (changes, words) in cases {
            let message = Self.refusal(changes)
            print("refused: \(message)")
            #expect(!message.isEmpty, "\(changes) was accepted")
            for w in words { #expect(message.contains(w), "\(message) does not name \(w)") }
            #expect(message.contains("x/config.json"))
        }
    }

    @Test("missing tensor, wrong shape and a head that contradicts tie_word_embeddings are refused by name")
    func weightErrors() throws {
        let c = try Self.decode(["num_hidden_layers": 1, "tie_word_embeddings": true])
        func source(_ drop: String? = nil, reshape: String? = nil, extra: [String] = []) -> ArrayTensorSource {
            var ts: [(TensorInfo, [Float])] = []
            for e in LlamaWeights.table(c) where e.name != drop {
                let shape = e.name == reshape ? [e.count] : e.shape
                ts.append((TensorInfo(name: e.name, shape: shape, dtype: .f32), Array(repeating: 0.5, count: e.count)))
            }
            for n in extra {  // an old checkpoint's RoPE buffer is [head_dim / 2]; anything else here is an lm_head
                let shape = n.hasSuffix("inv_freq") ? [8] : [256, 64]
                ts.append((TensorInfo(name: n, shape: shape, dtype: .f32), Array(repeating: 0, count: shape.reduce(1, *))))
            }
            return ArrayTensorSource(path: "m/model.safetensors", tensors: ts)
        }
        let ok = try LlamaWeights(config: c, source: source(extra: ["model.layers.0.self_attn.rotary_emb.inv_freq"]))
        #expect(ok.layers[0].qProj.float32![0] == 0.5 && ok.lmHead.raw == ok.embedTokens.raw)
        func message(_ s: ArrayTensorSource, _ config: LlamaConfig) -> String {
            do { _ = try LlamaWeights(config: config, source: s); return "" } catch { return "\(error)" }
        }
        let missing = message(source("model.layers.0.self_attn.k_proj.weight"), c)
        #expect(missing.contains("m/model.safetensors") && missing.contains("k_proj") && missing.contains("[32, 64]"))
        let shape = message(source(reshape: "model.layers.0.mlp.down_proj.weight"), c)
        #expect(shape.contains("down_proj") && shape.contains("[8192]") && shape.contains("[64, 128]"))
        let tiedWithHead = message(source(extra: ["lm_head.weight"]), c)
        #expect(tiedWithHead.contains("lm_head.weight") && tiedWithHead.contains("tie_word_embeddings"))
        var untied = c; untied.tieWordEmbeddings = false
        let noHead = message(source(), untied)
        #expect(noHead.contains("lm_head.weight") && noHead.contains("tie_word_embeddings"))
    }
}

/// A TensorSource over arrays, for loader error tests.
final class ArrayTensorSource: TensorSource {
    let path: String
    var tensors: [(TensorInfo, [Float])]
    init(path: String, tensors: [(TensorInfo, [Float])]) { self.path = path; self.tensors = tensors }
    var tensorInfos: [TensorInfo] { tensors.map(\.0) }
    func info(_ name: String) -> TensorInfo? { tensors.first { $0.0.name == name }?.0 }
    func readFloat32(_ name: String, into out: UnsafeMutableBufferPointer<Float>) throws {
        guard let t = tensors.first(where: { $0.0.name == name }), t.1.count == out.count else {
            throw PilotError.notFound(file: path, object: name)
        }
        for i in 0..<out.count { out[i] = t.1[i] }
    }
}
