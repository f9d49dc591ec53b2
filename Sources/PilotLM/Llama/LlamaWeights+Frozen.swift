import PilotTensor

/// The frozen matrices the decoder multiplies with, as `FrozenMatrix` views (Hugging Face [out, in]
/// layout). q|k|v and gate|up are one block each: they are contiguous in the table's order.
extension LlamaWeights {
    /// Layer l's q|k|v projections, [H·D + 2·KV·D, C].
    public func qkv(_ l: Int) -> FrozenMatrix {
        let c = config, w = layers[l]
        precondition(w.kProj == w.qProj + c.numAttentionHeads * c.headDim * c.hiddenSize
                     && w.vProj == w.kProj + c.numKeyValueHeads * c.headDim * c.hiddenSize,
                     "LlamaWeights layout: q, k and v must be contiguous")
        return FrozenMatrix(rows: (c.numAttentionHeads + 2 * c.numKeyValueHeads) * c.headDim, cols: c.hiddenSize, float32: w.qProj)
    }

    /// Layer l's output projection, [C, H·D].
    public func o(_ l: Int) -> FrozenMatrix {
        FrozenMatrix(rows: config.hiddenSize, cols: config.numAttentionHeads * config.headDim, float32: layers[l].oProj)
    }

    /// Layer l's gate|up projections, [2·F, C].
    public func gateUp(_ l: Int) -> FrozenMatrix {
        let w = layers[l]
        precondition(w.upProj == w.gateProj + config.intermediateSize * config.hiddenSize, "LlamaWeights layout: gate and up must be contiguous")
        return FrozenMatrix(rows: 2 * config.intermediateSize, cols: config.hiddenSize, float32: w.gateProj)
    }

    /// Layer l's down projection, [C, F].
    public func down(_ l: Int) -> FrozenMatrix {
        FrozenMatrix(rows: config.hiddenSize, cols: config.intermediateSize, float32: layers[l].downProj)
    }

    /// The token embedding table, [V, C].
    public var embedding: FrozenMatrix { FrozenMatrix(rows: config.vocabSize, cols: config.hiddenSize, float32: embedTokens) }

    /// The output head, [V, C] (the embedding table itself when the model ties them).
    public var head: FrozenMatrix { FrozenMatrix(rows: config.vocabSize, cols: config.hiddenSize, float32: lmHead) }
}
