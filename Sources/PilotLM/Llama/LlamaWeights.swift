import PilotCore

// Shape letters (fixed for all of Sources/PilotLM/Llama):
//   B batch, T tokens of a call, S positions in the KV cache, C hidden_size, F intermediate_size,
//   H query heads, KV key/value heads, D head_dim, V vocab_size, L layers.

/// Every parameter of one Llama-family model in ONE Float32 allocation, with named views.
/// `LlamaWeights.table` is the only place that maps Hugging Face tensor names to these fields.
public final class LlamaWeights: @unchecked Sendable {
    /// One decoder block's views into the allocation. Linear weights are `[out, in]` as in PyTorch.
    public struct Layer {
        public let inputLayernorm: UnsafeMutablePointer<Float>          // [C]
        public let qProj: UnsafeMutablePointer<Float>                   // [H·D, C]
        public let kProj: UnsafeMutablePointer<Float>                   // [KV·D, C]
        public let vProj: UnsafeMutablePointer<Float>                   // [KV·D, C]
        public let oProj: UnsafeMutablePointer<Float>                   // [C, H·D]
        public let qBias: UnsafeMutablePointer<Float>?                  // [H·D]
        public let kBias: UnsafeMutablePointer<Float>?                  // [KV·D]
        public let vBias: UnsafeMutablePointer<Float>?                  // [KV·D]
        public let oBias: UnsafeMutablePointer<Float>?                  // [C]
        public let postAttentionLayernorm: UnsafeMutablePointer<Float>  // [C]
        public let gateProj: UnsafeMutablePointer<Float>                // [F, C]
        public let upProj: UnsafeMutablePointer<Float>                  // [F, C]
        public let downProj: UnsafeMutablePointer<Float>                // [C, F]
    }

    /// What a tensor is in our model.
    public enum Field: Hashable, Sendable {
        case embedTokens, finalNorm, lmHead
        case inputLayernorm(Int), qProj(Int), kProj(Int), vProj(Int), oProj(Int)
        case qBias(Int), kBias(Int), vBias(Int), oBias(Int)
        case postAttentionLayernorm(Int), gateProj(Int), upProj(Int), downProj(Int)
    }

    /// One row of the mapping table.
    public struct Entry: Sendable {
        public let field: Field
        public let name: String
        public let shape: [Int]
        public var count: Int { shape.reduce(1, *) }
    }

    public let config: LlamaConfig
    /// The one allocation: every entry of `table` back to back.
    public let storage: UnsafeMutableBufferPointer<Float>
    /// What keeps `storage` alive when the weights do not own it (a shared read-only mapping).
    private let owner: AnyObject?
    /// Whether the values are a read-only mapping shared with the node's other ranks (never write them).
    public var isShared: Bool { owner != nil }
    public let entries: [Entry]
    private let offsets: [Field: Int]
    public let embedTokens: UnsafeMutablePointer<Float>   // [V, C]
    public let layers: [Layer]
    public let norm: UnsafeMutablePointer<Float>          // [C]
    /// [V, C]: `embedTokens` itself when `tie_word_embeddings`.
    public let lmHead: UnsafeMutablePointer<Float>

    /// Hugging Face names and shapes of every tensor this architecture reads, in storage order.
    public static func table(_ c: LlamaConfig) -> [Entry] {
        let C = c.hiddenSize, F = c.intermediateSize, HD = c.numAttentionHeads * c.headDim
        let KVD = c.numKeyValueHeads * c.headDim
        var t = [Entry(field: .embedTokens, name: "model.embed_tokens.weight", shape: [c.vocabSize, C])]
        for l in 0..<c.numHiddenLayers {
            let p = "model.layers.\(l)."
            t.append(Entry(field: .inputLayernorm(l), name: p + "input_layernorm.weight", shape: [C]))
            t.append(Entry(field: .qProj(l), name: p + "self_attn.q_proj.weight", shape: [HD, C]))
            t.append(Entry(field: .kProj(l), name: p + "self_attn.k_proj.weight", shape: [KVD, C]))
            t.append(Entry(field: .vProj(l), name: p + "self_attn.v_proj.weight", shape: [KVD, C]))
            t.append(Entry(field: .oProj(l), name: p + "self_attn.o_proj.weight", shape: [C, HD]))
            if c.hasQKVBias {
                t.append(Entry(field: .qBias(l), name: p + "self_attn.q_proj.bias", shape: [HD]))
                t.append(Entry(field: .kBias(l), name: p + "self_attn.k_proj.bias", shape: [KVD]))
                t.append(Entry(field: .vBias(l), name: p + "self_attn.v_proj.bias", shape: [KVD]))
            }
            if c.hasOBias { t.append(Entry(field: .oBias(l), name: p + "self_attn.o_proj.bias", shape: [C])) }
            t.append(Entry(field: .postAttentionLayernorm(l), name: p + "post_attention_layernorm.weight", shape: [C]))
            t.append(Entry(field: .gateProj(l), name: p + "mlp.gate_proj.weight", shape: [F, C]))
            t.append(Entry(field: .upProj(l), name: p + "mlp.up_proj.weight", shape: [F, C]))
            t.append(Entry(field: .downProj(l), name: p + "mlp.down_proj.weight", shape: [C, F]))
        }
        t.append(Entry(field: .finalNorm, name: "model.norm.weight", shape: [C]))
        if !c.tieWordEmbeddings { t.append(Entry(field: .lmHead, name: "lm_head.weight", shape: [c.vocabSize, C])) }
        return t
    }

    /// Zero-filled weights of `config`'s shapes (tests, or a caller that fills `storage` itself).
    public convenience init(config: LlamaConfig) {
        let total = LlamaWeights.table(config).reduce(0) { $0 + $1.count }
        let storage = UnsafeMutableBufferPointer<Float>.allocate(capacity: total)
        storage.initialize(repeating: 0)
        self.init(config: config, mapped: storage, owner: nil)
    }

    /// The weights of `config` in `storage` (every entry of `table(config)` back to back), which `owner`
    /// keeps alive (a read-only file mapping shared by the node's ranks: `PreparedWeights`); with no
    /// owner the weights own `storage` and free it.
    init(config: LlamaConfig, mapped storage: UnsafeMutableBufferPointer<Float>, owner: AnyObject?) {
        self.config = config
        self.owner = owner
        entries = LlamaWeights.table(config)
        var offsets: [Field: Int] = [:], total = 0
        for e in entries { offsets[e.field] = total; total += e.count }
        precondition(storage.count == total, "LlamaWeights: \(storage.count) values for a table of \(total)")
        self.offsets = offsets
        self.storage = storage
        let base = storage.baseAddress!
        func at(_ f: Field) -> UnsafeMutablePointer<Float> { base + offsets[f]! }
        func maybe(_ f: Field) -> UnsafeMutablePointer<Float>? { offsets[f].map { base + $0 } }
        embedTokens = at(.embedTokens)
        norm = at(.finalNorm)
        lmHead = config.tieWordEmbeddings ? at(.embedTokens) : at(.lmHead)
        layers = (0..<config.numHiddenLayers).map { l in
            Layer(inputLayernorm: at(.inputLayernorm(l)), qProj: at(.qProj(l)), kProj: at(.kProj(l)),
                  vProj: at(.vProj(l)), oProj: at(.oProj(l)), qBias: maybe(.qBias(l)), kBias: maybe(.kBias(l)),
                  vBias: maybe(.vBias(l)), oBias: maybe(.oBias(l)),
                  postAttentionLayernorm: at(.postAttentionLayernorm(l)), gateProj: at(.gateProj(l)),
                  upProj: at(.upProj(l)), downProj: at(.downProj(l)))
        }
    }

    deinit { if owner == nil { storage.deallocate() } }

    /// Total parameters held (the tied head counted once).
    public var parameterCount: Int { storage.count }

    /// The view of `field`, or nil when this architecture has no such tensor.
    public func pointer(_ field: Field) -> UnsafeMutableBufferPointer<Float>? {
        guard let o = offsets[field], let e = entries.first(where: { $0.field == field }) else { return nil }
        return UnsafeMutableBufferPointer(start: storage.baseAddress! + o, count: e.count)
    }

    /// Fills every tensor of `table(config)` from `source` (converting F16/BF16/quantized to Float32 there),
    /// after `check(config, against: source)` has found exactly those tensors with those shapes (the RoPE
    /// `rotary_emb.inv_freq` buffers of old checkpoints aside), so nothing is allocated for a config the
    /// file does not back.
    public convenience init(config: LlamaConfig, source: TensorSource) throws {
        try LlamaWeights.check(config, against: source)
        self.init(config: config)
        for e in entries { try source.readFloat32(e.name, into: pointer(e.field)!) }
    }
}
