import PilotCore
import PilotTensor

// Shape letters (fixed for all of Sources/PilotLM/Llama):
//   B batch, T tokens of a call, S positions in the KV cache, C hidden_size, F intermediate_size,
//   H query heads, KV key/value heads, D head_dim, V vocab_size, L layers.

/// Every parameter of one Llama-family model in ONE allocation, with named views. The matrices (the
/// projections, the embedding table, the head) are stored in the base's dtype (`BaseDType`: f32, bf16 or
/// q8; a matrix whose rows do not split into q8's blocks of 32 stays f32); the norms and biases are
/// always Float32. `LlamaWeights.table` is the only place that maps Hugging Face tensor names to these fields.
public final class LlamaWeights: @unchecked Sendable {
    /// One decoder block's views into the allocation. Linear weights are `[out, in]` as in PyTorch.
    public struct Layer {
        public let inputLayernorm: UnsafeMutablePointer<Float>          // [C]
        public let qProj: FrozenMatrix                                  // [H·D, C]
        public let kProj: FrozenMatrix                                  // [KV·D, C]
        public let vProj: FrozenMatrix                                  // [KV·D, C]
        public let oProj: FrozenMatrix                                  // [C, H·D]
        public let qBias: UnsafeMutablePointer<Float>?                  // [H·D]
        public let kBias: UnsafeMutablePointer<Float>?                  // [KV·D]
        public let vBias: UnsafeMutablePointer<Float>?                  // [KV·D]
        public let oBias: UnsafeMutablePointer<Float>?                  // [C]
        public let postAttentionLayernorm: UnsafeMutablePointer<Float>  // [C]
        public let gateProj: FrozenMatrix                               // [F, C]
        public let upProj: FrozenMatrix                                 // [F, C]
        public let downProj: FrozenMatrix                               // [C, F]
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
    /// The dtype of the matrices (`storedDType` says which ones: all of them unless a row does not fit q8's blocks).
    public let dtype: BaseDType
    /// The one allocation: every entry of `table` back to back, each in its stored dtype, each starting at a
    /// multiple of its element size (so f32 entries are back to back exactly as before dtypes existed).
    public let bytes: UnsafeMutableRawBufferPointer
    /// What keeps `bytes` alive when the weights do not own it (a shared read-only mapping).
    private let owner: AnyObject?
    /// Whether the values are a read-only mapping shared with the node's other ranks (never write them).
    public var isShared: Bool { owner != nil }
    public let entries: [Entry]
    private let offsets: [Field: Int]
    private let index: [Field: Int]
    public let embedTokens: FrozenMatrix   // [V, C]
    public let layers: [Layer]
    public let norm: UnsafeMutablePointer<Float>          // [C]
    /// [V, C]: `embedTokens` itself when `tie_word_embeddings`.
    public let lmHead: FrozenMatrix

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

    /// The dtype entry `e` is stored in under a base of `dtype`: matrices in `dtype` (f32 when a row does
    /// not split into q8's blocks), norms and biases in f32.
    public static func storedDType(_ e: Entry, base dtype: BaseDType) -> BaseDType {
        e.shape.count == 2 && dtype.fits(cols: e.shape[1]) ? dtype : .f32
    }

    /// Bytes of entry `e` under a base of `dtype`.
    static func byteCount(_ e: Entry, base dtype: BaseDType) -> Int {
        storedDType(e, base: dtype).bytes(rows: e.shape.count == 2 ? e.shape[0] : 1, cols: e.shape.last ?? 1)
    }

    /// Byte offset of every entry of `table(config)` under a base of `dtype`, and the total: back to back,
    /// each aligned to its element size (4 for f32, 2 for bf16, 1 for q8's blocks).
    public static func layout(_ config: LlamaConfig, dtype: BaseDType) -> (offsets: [Int], total: Int) {
        var offsets: [Int] = [], total = 0
        for e in table(config) {
            let align = storedDType(e, base: dtype) == .f32 ? 4 : (storedDType(e, base: dtype) == .bf16 ? 2 : 1)
            total = (total + align - 1) / align * align
            offsets.append(total)
            total += byteCount(e, base: dtype)
        }
        return (offsets, total)
    }

    /// Zero-filled weights of `config`'s shapes (tests, or a caller that fills `bytes` itself).
    public convenience init(config: LlamaConfig, dtype: BaseDType = .f32) {
        let total = LlamaWeights.layout(config, dtype: dtype).total
        let storage = UnsafeMutableRawBufferPointer.allocate(byteCount: max(total, 1), alignment: 64)
        storage.initializeMemory(as: UInt8.self, repeating: 0)
        self.init(config: config, dtype: dtype, mapped: UnsafeMutableRawBufferPointer(rebasing: storage[0..<total]), owner: nil)
    }

    /// The weights of `config` in `storage` (every entry of `table(config)` as `layout` places it), which
    /// `owner` keeps alive (a read-only file mapping shared by the node's ranks: `PreparedWeights`); with
    /// no owner the weights own `storage` and free it.
    init(config: LlamaConfig, dtype: BaseDType, mapped storage: UnsafeMutableRawBufferPointer, owner: AnyObject?) {
        self.config = config
        self.dtype = dtype
        self.owner = owner
        entries = LlamaWeights.table(config)
        let (byteOffsets, total) = LlamaWeights.layout(config, dtype: dtype)
        precondition(storage.count == total, "LlamaWeights: \(storage.count) bytes for a table of \(total)")
        var offsets: [Field: Int] = [:], index: [Field: Int] = [:]
        for (i, e) in entries.enumerated() { offsets[e.field] = byteOffsets[i]; index[e.field] = i }
        self.offsets = offsets
        self.index = index
        bytes = storage
        let base = storage.baseAddress!, entries = entries
        func vector(_ f: Field) -> UnsafeMutablePointer<Float> { (base + offsets[f]!).assumingMemoryBound(to: Float.self) }
        func maybe(_ f: Field) -> UnsafeMutablePointer<Float>? { offsets[f] == nil ? nil : vector(f) }
        func matrix(_ f: Field) -> FrozenMatrix {
            let e = entries[index[f]!]
            return FrozenMatrix(dtype: LlamaWeights.storedDType(e, base: dtype), rows: e.shape[0], cols: e.shape[1], raw: base + offsets[f]!)
        }
        embedTokens = matrix(.embedTokens)
        norm = vector(.finalNorm)
        lmHead = config.tieWordEmbeddings ? matrix(.embedTokens) : matrix(.lmHead)
        layers = (0..<config.numHiddenLayers).map { l in
            Layer(inputLayernorm: vector(.inputLayernorm(l)), qProj: matrix(.qProj(l)), kProj: matrix(.kProj(l)),
                  vProj: matrix(.vProj(l)), oProj: matrix(.oProj(l)), qBias: maybe(.qBias(l)), kBias: maybe(.kBias(l)),
                  vBias: maybe(.vBias(l)), oBias: maybe(.oBias(l)),
                  postAttentionLayernorm: vector(.postAttentionLayernorm(l)), gateProj: matrix(.gateProj(l)),
                  upProj: matrix(.upProj(l)), downProj: matrix(.downProj(l)))
        }
    }

    deinit { if owner == nil { bytes.deallocate() } }

    /// Total parameters held (the tied head counted once).
    public var parameterCount: Int { entries.reduce(0) { $0 + $1.count } }

    /// The bytes of `field` as stored, with their dtype; nil when this architecture has no such tensor.
    public func stored(_ field: Field) -> (dtype: BaseDType, bytes: UnsafeMutableRawBufferPointer)? {
        guard let o = offsets[field], let i = index[field] else { return nil }
        let e = entries[i]
        return (LlamaWeights.storedDType(e, base: dtype),
                UnsafeMutableRawBufferPointer(start: bytes.baseAddress! + o, count: LlamaWeights.byteCount(e, base: dtype)))
    }

    /// The Float32 view of `field`; nil when this architecture has no such tensor or it is not stored in f32.
    public func pointer(_ field: Field) -> UnsafeMutableBufferPointer<Float>? {
        guard let s = stored(field), s.dtype == .f32 else { return nil }
        return s.bytes.bindMemory(to: Float.self)
    }

    /// These weights with the matrices in `dtype` (a copy; `self` when it already is): each f32 matrix
    /// encoded as `FrozenEncoding` does, the rest copied. Used to merge an adapter in f32 and then hold the
    /// result in bf16 or q8.
    public func converted(to dtype: BaseDType) -> LlamaWeights {
        if dtype == self.dtype { return self }
        precondition(self.dtype == .f32, "LlamaWeights.converted: from f32 only, not \(self.dtype.rawValue)")
        let out = LlamaWeights(config: config, dtype: dtype)
        for e in entries {
            let src = pointer(e.field)!, dst = out.stored(e.field)!
            FrozenEncoding.encode(UnsafeBufferPointer(src), as: dst.dtype, into: dst.bytes.baseAddress!)
        }
        return out
    }

    /// Fills every tensor of `table(config)` from `source`, each stored as `dtype` makes it (`readEncoded`:
    /// converted to Float32 and encoded, or copied when the source already holds that dtype), after
    /// `check(config, against: source)` has found exactly those tensors with those shapes (the RoPE
    /// `rotary_emb.inv_freq` buffers of old checkpoints aside), so nothing is allocated for a config the
    /// file does not back.
    public convenience init(config: LlamaConfig, source: TensorSource, dtype: BaseDType = .f32) throws {
        try LlamaWeights.check(config, against: source)
        self.init(config: config, dtype: dtype)
        for e in entries { try source.readEncoded(e.name, as: LlamaWeights.storedDType(e, base: dtype), into: stored(e.field)!.bytes) }
    }
}
