import Foundation
import Testing
import PilotCore
import PilotLM
import PilotTestSupport
import PilotTensor

/// The engine against transformers on tiny random models (GQA/MHA, tied/untied, biases, Qwen2, BF16 storage).
@Suite("Llama engine vs transformers", .serialized)
struct LlamaTests {
    @Test("logits of every position equal transformers' to 1e-5", arguments: TinyLlamaFixture.variants)
    func logitsMatch(variant: String) throws {
        let f = try TinyLlamaFixture(variant)
        let model = try f.model()
        let cache = model.makeCache(batch: f.inputIDs.count)
        let ours = try model.forward(f.inputIDs, cache: cache, logits: .all)
        let theirs = f.logits.flatMap { $0.flatMap { $0 } }
        let d = maxAbsDiff(ours, theirs)
        print("tiny-\(variant): max |logit - transformers| = \(d) over \(theirs.count) logits; first \(ours.prefix(3)) vs \(theirs.prefix(3))")
        #expect(d <= 1e-5)
    }

    @Test("the same logits on 2 threads")
    func threadsAgree() throws {
        let f = try TinyLlamaFixture("gqa-tied")
        let model = try f.model()
        let one = try model.forward(f.inputIDs, cache: model.makeCache(batch: 2))
        Parallel.configure(threads: 2)
        defer { Parallel.configure(threads: 1) }
        let two = try model.forward(f.inputIDs, cache: model.makeCache(batch: 2))
        let d = maxAbsDiff(one, two)
        print("1 vs 2 threads: max diff \(d)")
        #expect(d <= 1e-6)
    }

    @Test("KV-cache decoding gives a full prefill's logits at every step", arguments: ["gqa-tied", "mha-untied", "qwen2"])
    func cacheDecodingMatchesPrefill(variant: String) throws {
        let f = try TinyLlamaFixture(variant)
        let model = try f.model()
        let V = f.config.vocabSize, B = f.inputIDs.count, T = f.inputIDs[0].count, start = 5
        let cache = model.makeCache(batch: B)
        // prefill the first `start` tokens, then one token per sequence per step
        var worst: Float = 0
        let first = try model.forward(f.inputIDs.map { Array($0[0..<start]) }, cache: cache, logits: .last)
        for b in 0..<B { worst = max(worst, maxAbsDiff(Array(first[(b * V)..<((b + 1) * V)]), f.logits[b][start - 1])) }
        for t in start..<T {
            let step = try model.forward(f.inputIDs.map { [$0[t]] }, cache: cache, logits: .last)
            for b in 0..<B { worst = max(worst, maxAbsDiff(Array(step[(b * V)..<((b + 1) * V)]), f.logits[b][t])) }
        }
        #expect(cache.length == T)
        print("tiny-\(variant): KV-cache decode vs transformers' full prefill: max diff \(worst)")
        #expect(worst <= 1e-5)
    }

    /// Counted only when scripts/bench/malloc_count.c is preloaded (LD_PRELOAD=.build-engine/libmalloc_count.so).
    @Test("decode steps and greedy sampling allocate nothing after the first", .enabled(if: dlsym(nil, "pilot_alloc_count") != nil))
    func decodeAllocatesNothing() throws {
        guard let sym = dlsym(nil, "pilot_alloc_count") else { return }
        let count = unsafeBitCast(sym, to: (@convention(c) () -> UInt).self)
        let f = try TinyLlamaFixture("gqa-tied")
        for threads in [1, 2] {
            Parallel.configure(threads: threads)
            defer { Parallel.configure(threads: 1) }
            let model = try f.model(maxBatch: 2, maxTokens: 16, maxContext: 32)
            let sampler = try Sampler(.greedy, vocabSize: f.config.vocabSize)
            let cache = model.makeCache(batch: 2)
            let prompt: [Int32] = f.inputIDs.flatMap { $0 }
            var logits = try prompt.withUnsafeBufferPointer { try model.forward(tokens: $0, batch: 2, cache: cache, logits: .last) }
            let step = UnsafeMutableBufferPointer<Int32>.allocate(capacity: 2)
            defer { step.deallocate() }
            var before: UInt = 0
            for i in 0..<12 {
                if i == 2 { before = count() }
                step[0] = sampler.next(logits.baseAddress!)
                step[1] = sampler.next(logits.baseAddress! + f.config.vocabSize)
                logits = try model.forward(tokens: UnsafeBufferPointer(step), batch: 2, cache: cache, logits: .last)
            }
            let allocations = count() - before
            print("threads \(threads): heap allocations in 10 decode steps (B=2): \(allocations)")
            #expect(allocations == 0)
        }
    }

    @Test("a forward that does not fit is refused, not run")
    func refusesOversizedCalls() throws {
        let f = try TinyLlamaFixture("gqa-tied")
        let model = try f.model(maxBatch: 2, maxTokens: 16, maxContext: 20)
        let cache = model.makeCache(batch: 1)
        #expect(throws: PilotError.self) { try model.forward([Array(repeating: 3, count: 17)], cache: cache) }
        #expect(throws: PilotError.self) { try model.forward([[300]], cache: cache) }
        #expect(throws: PilotError.self) { try model.forward([[3], [4]], cache: cache) }
        _ = try model.forward([Array(repeating: 3, count: 16)], cache: cache)
        #expect(throws: PilotError.self) { try model.forward([Array(repeating: 3, count: 5)], cache: cache) }
        #expect(cache.length == 16)
    }
}

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
            for n in extra { ts.append((TensorInfo(name: n, shape: [256, 64], dtype: .f32), Array(repeating: 0, count: 256 * 64))) }
            return ArrayTensorSource(path: "m/model.safetensors", tensors: ts)
        }
        let ok = try LlamaWeights(config: c, source: source(extra: ["model.layers.0.self_attn.rotary_emb.inv_freq"]))
        #expect(ok.layers[0].qProj[0] == 0.5 && ok.lmHead == ok.embedTokens)
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
