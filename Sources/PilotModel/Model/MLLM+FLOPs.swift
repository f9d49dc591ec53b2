// Shape letters: B sequences, T context, P visual tokens, C width, F SwiGLU hidden, R LoRA rank,
// Dv vision width, A adapter hidden, V vocabulary, E router outputs.

extension MLLM {
    /// Matmul FLOPs (2·M·N·K per product) of one training step, counted exactly like
    /// `jax_ref.py --flops`: forward; backward with input gradients through every LM linear for all
    /// B·T rows, weight gradients only for trainable LoRA, adapters and router, no gradient into Hv.
    /// Elementwise work (norms, RoPE, softmax, activations, AdamW) is not counted.
    public func analyticFLOPs(batch B: Int, targetRows M: Int) -> Double {
        let c = config
        let T = c.contextLength, P = c.visualTokens, C = c.width, F = c.ffnHidden, R = c.loraRank
        let Dv = c.visionWidth, A = c.adapterHidden, V = c.vocabSize, H = c.heads, D = c.headDim, L = c.layers
        let N = Double(B * T), Nv = Double(B * P)
        let all = LanguageModel.linearShapes(c)
        let shapes: [(Int, Int)] = all.map { ($0.inF, $0.outF) }
        let targets = Set(c.loraTargetNames)
        let loraShapes: [(Int, Int)] = all.filter { targets.contains($0.name) }.map { ($0.inF, $0.outF) }
        let branches = Double(hasLoRA ? (variant == .dualLoRA ? 2 : 1) : 0)
        let base = shapes.reduce(0.0) { $0 + 2 * N * Double($1.0 * $1.1) } * Double(L)
        // a frozen imported base adds the LoRA path to dx as its own product (the built-in LM merges it)
        let frozenDx = self.base != nil ? 1.0 : 0.0
        let lora = branches * loraShapes.reduce(0.0) { $0 + 2 * N * Double(R * ($1.0 + $1.1)) } * Double(L)
        let attn = 2 * (2 * Double(B * H * T * T * D)) * Double(L)
        let head = 2 * Double(M) * Double(C * V)
        let na = Double(connector.adapters.count)
        let E = Double(variant == .pilotStage2 ? options.numTasks : 0)
        let conn = na * 2 * Nv * Double(Dv * A + A * C) + 2 * Nv * Double(Dv) * E
        let fwd = base + lora + attn + head + conn
        let kvAttn = attn  // recomputing P in the backward pass (imported base) adds one q·kᵀ per head
        let bwd = base + 2 * lora + frozenDx * lora / 2 + 2 * attn + frozenDx * kvAttn / 2 + head + na * 2 * Nv * Double(Dv * A + 2 * A * C) + 2 * Nv * Double(Dv) * E
        return fwd + bwd
    }
}
