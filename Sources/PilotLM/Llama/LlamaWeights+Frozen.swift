import PilotTensor

/// The frozen matrices the decoder multiplies with, as `FrozenMatrix` views (Hugging Face [out, in]
/// layout), in the base's dtype. q|k|v and gate|up are one block each: they are contiguous in the
/// table's order and share a dtype and a row width.
extension LlamaWeights {
    /// `first` and the matrices after it as one matrix of their rows together (they must be back to back).
    static func stacked(_ first: FrozenMatrix, _ rest: FrozenMatrix..., what: String) -> FrozenMatrix {
        var rows = first.rows, end = first.raw + first.byteCount
        for m in rest {
            precondition(m.dtype == first.dtype && m.cols == first.cols && m.raw == end, "LlamaWeights layout: \(what) must be contiguous")
            rows += m.rows
            end = m.raw + m.byteCount
        }
        return FrozenMatrix(dtype: first.dtype, rows: rows, cols: first.cols, raw: first.raw)
    }

    /// Layer l's q|k|v projections, [H·D + 2·KV·D, C].
    public func qkv(_ l: Int) -> FrozenMatrix {
        let w = layers[l]
        return Self.stacked(w.qProj, w.kProj, w.vProj, what: "q, k and v")
    }

    /// Layer l's output projection, [C, H·D].
    public func o(_ l: Int) -> FrozenMatrix { layers[l].oProj }

    /// Layer l's gate|up projections, [2·F, C].
    public func gateUp(_ l: Int) -> FrozenMatrix {
        let w = layers[l]
        return Self.stacked(w.gateProj, w.upProj, what: "gate and up")
    }

    /// Layer l's down projection, [C, F].
    public func down(_ l: Int) -> FrozenMatrix { layers[l].downProj }

    /// The token embedding table, [V, C].
    public var embedding: FrozenMatrix { embedTokens }

    /// The output head, [V, C] (the embedding table itself when the model ties them).
    public var head: FrozenMatrix { lmHead }
}
