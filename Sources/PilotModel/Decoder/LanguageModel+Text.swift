import Foundation
import PilotCore
import PilotLM
import PilotTensor

// Shape letters: B sequences, n tokens of a call, V vocabulary.

/// Text in, logits out: the decoder run on an imported LM with no vision side and no trainable
/// parameters, for `pilot generate`, `pilot model logits` and the checks against transformers. It is
/// the same `LanguageModel` (blocks, RoPE, frozen base read in place, `step` and its KV cache) that
/// trains and evaluates the multimodal model; only its training activations are not allocated.
extension LanguageModel {
    public enum Logits: Sendable { case all, last }

    /// An inference-only decoder over `weights` (a PEFT adapter is merged into them beforehand, as
    /// peft's `merge_and_unload`). One `forward` takes up to `maxBatch` × `maxTokens` tokens; a KV
    /// cache holds up to `maxContext` positions (the RoPE table's length).
    public convenience init(llama: LlamaConfig, weights: LlamaWeights, maxBatch: Int = 1, maxTokens: Int = 512,
                            maxContext: Int) throws {
        guard maxBatch > 0, maxTokens > 0, maxContext >= maxTokens else {
            throw PilotError.invalidArgument("LanguageModel: need maxBatch > 0 and 0 < maxTokens ≤ maxContext (got \(maxBatch), \(maxTokens), \(maxContext))")
        }
        guard llama.hiddenSize == llama.numAttentionHeads * llama.headDim, llama.headDim % 2 == 0 else {
            throw PilotError.invalidArgument("LanguageModel: head_dim \(llama.headDim) × \(llama.numAttentionHeads) heads ≠ hidden_size \(llama.hiddenSize) (or head_dim is odd); the decoder does not run such a model yet")
        }
        var c = ModelConfig.tiny
        c.adopt(llama)
        c.contextLength = maxContext
        // marks the base as imported; nothing is hashed, because inference writes no checkpoint
        c.lm = LMReference(path: "", sha256: "")
        self.init(cfg: c, store: ParameterStore(specs: [], trainableGroups: { _ in false }, seed: 0), maxBatch: maxBatch,
                  loraBranches: [], base: weights, training: false, maxStepTokens: maxTokens)
    }

    /// Bytes of frozen weights one decode step reads (every layer's q|k|v, o, gate|up and down, and the
    /// head; the one embedding row aside): the numerator of a decode step's memory-bound limit.
    public var decodeWeightBytes: Int {
        let blocks = layers.reduce(0) { sum, l in
            sum + [l.qkv, l.o, l.gateUp, l.down].reduce(0) { $0 + ($1.frozenBase?.byteCount ?? 4 * $1.inFeatures * $1.outTotal) }
        }
        return blocks + (frozenHead?.byteCount ?? 4 * C * V)
    }

    /// Largest B and n of one `forward` call; positions a cache can hold; vocabulary size.
    public var maxTokens: Int { maxStepTokens }
    public var maxContext: Int { T }
    public var vocabSize: Int { V }
    /// The imported LM's weights (nil for the built-in LM, whose weights are parameters). Merging an
    /// adapter into them changes what every decoder over them computes.
    public var weights: LlamaWeights? { base }

    /// A cache for `batch` sequences of up to `maxLength` (≤ `maxContext`) positions.
    public func makeCache(batch: Int, maxLength: Int? = nil) -> KVCache {
        KVCache(layers: layers.count, batch: batch, maxLength: min(maxLength ?? T, T), kvWidth: KVD)
    }

    /// Runs B sequences of n tokens each at positions cache.length ..< cache.length+n, appending their
    /// keys and values to `cache`. Returns logits [B, n, V] (`.all`) or [B, V] of each sequence's last
    /// token (`.last`); the buffer is the model's own and is overwritten by the next call.
    public func forward(tokens: UnsafeBufferPointer<Int32>, batch B: Int, cache: KVCache,
                        logits mode: Logits = .all) throws -> UnsafeBufferPointer<Float> {
        guard B > 0, tokens.count % B == 0, tokens.count > 0 else {
            throw PilotError.invalidArgument("LanguageModel.forward: \(tokens.count) tokens do not split into \(B) sequences")
        }
        let n = tokens.count / B
        guard B <= maxBatch, n <= maxStepTokens else {
            throw PilotError.invalidArgument("LanguageModel.forward: batch \(B) × \(n) tokens exceeds the model's \(maxBatch) × \(maxStepTokens); make the model with a larger maxBatch/maxTokens")
        }
        guard cache.batch == B, cache.layers == layers.count else {
            throw PilotError.invalidArgument("LanguageModel.forward: the KV cache is for batch \(cache.batch), \(cache.layers) layers; this call has batch \(B)")
        }
        let pos0 = cache.length
        guard pos0 + n <= min(cache.maxLength, T) else {
            throw PilotError.invalidArgument("LanguageModel.forward: context full: \(pos0) cached + \(n) new positions exceed \(min(cache.maxLength, T))")
        }
        for t in tokens where t < 0 || Int(t) >= V {
            throw PilotError.invalidArgument("LanguageModel.forward: token id \(t) is outside the vocabulary 0..<\(V)")
        }
        let st = stepState()
        for b in 0..<B { st.start[b] = Int32(pos0) }
        step(tokens: tokens.baseAddress!, batch: B, count: n, start: st.start, keep: nil, cache: cache)
        cache.length = pos0 + n
        switch mode {
        case .all:
            if st.allLogits == nil { st.allLogits = Tensor(shape: [maxBatch * maxStepTokens, V]) }
            stepHead(rows: B * n, into: st.allLogits!.pointer)
            return UnsafeBufferPointer(start: st.allLogits!.pointer, count: B * n * V)
        case .last:
            let x = st.x.pointer
            for b in 0..<B where b * n + n - 1 != b { (x + b * C).update(from: x + (b * n + n - 1) * C, count: C) }
            stepHead(rows: B, into: st.logits.pointer)
            return UnsafeBufferPointer(start: st.logits.pointer, count: B * V)
        }
    }

    /// Convenience for tests and tools: `tokens` is B rows of n ids; returns a copy of the logits.
    public func forward(_ tokens: [[Int32]], cache: KVCache, logits mode: Logits = .all) throws -> [Float] {
        guard tokens.allSatisfy({ $0.count == tokens.first?.count }) else {
            throw PilotError.invalidArgument("LanguageModel.forward: sequences of different lengths")
        }
        let flat = tokens.flatMap { $0 }
        return try flat.withUnsafeBufferPointer { Array(try forward(tokens: $0, batch: tokens.count, cache: cache, logits: mode)) }
    }

    /// Loads a Hugging Face directory (`config.json` and `model.safetensors` or its shards; F32, F16 or
    /// BF16), merging the PEFT LoRA adapter in `adapter` when given. `maxContext` defaults to
    /// `max_position_embeddings`, capped at 4096.
    /// `dtype` holds the matrices in bf16 or q8 (an adapter is merged in f32 first).
    public static func load(directory: String, adapter: String? = nil, maxBatch: Int = 1, maxTokens: Int = 512,
                            maxContext: Int? = nil, dtype: BaseDType = .f32) throws -> LanguageModel {
        let lora = try adapter.map { try PEFTAdapter.read(directory: $0) }
        let config = try LlamaConfig.load(directory: directory)
        let source = try SafetensorsCheckpoint(directory: directory)
        var weights = try LlamaWeights(config: config, source: source, dtype: lora == nil ? dtype : .f32)
        if let lora, let adapter {
            try weights.merge(lora, model: directory, adapterDirectory: adapter)
            weights = weights.converted(to: dtype)
        }
        return try inference(config, weights, maxBatch: maxBatch, maxTokens: maxTokens, maxContext: maxContext)
    }

    /// Loads a llama-architecture GGUF file (quantized tensors dequantized to Float32), its config taken
    /// from the GGUF metadata.
    public static func load(gguf path: String, maxBatch: Int = 1, maxTokens: Int = 512, maxContext: Int? = nil) throws -> LanguageModel {
        let (config, weights) = try LlamaWeights.load(gguf: path)
        return try inference(config, weights, maxBatch: maxBatch, maxTokens: maxTokens, maxContext: maxContext)
    }

    private static func inference(_ config: LlamaConfig, _ weights: LlamaWeights, maxBatch: Int, maxTokens: Int,
                                  maxContext: Int?) throws -> LanguageModel {
        let context = maxContext ?? min(config.maxPositionEmbeddings, 4096)
        return try LanguageModel(llama: config, weights: weights, maxBatch: maxBatch, maxTokens: min(maxTokens, context), maxContext: context)
    }
}

extension PretrainedLM {
    /// The decoder over this model's weights (with the adapter, if one was given, merged in).
    /// `maxBatch` × `maxTokens` bounds one forward call; `maxContext` (capped at
    /// `max_position_embeddings`) the KV cache.
    public func decoder(maxBatch: Int = 1, maxTokens: Int = 512, maxContext: Int = 2048) throws -> LanguageModel {
        let context = min(maxContext, config.maxPositionEmbeddings)
        return try LanguageModel(llama: config, weights: weights, maxBatch: maxBatch, maxTokens: min(maxTokens, context), maxContext: context)
    }
}
