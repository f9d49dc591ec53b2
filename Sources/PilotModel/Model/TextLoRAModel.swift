import PilotCore
import PilotTensor

// Shape letters: B sequences, T tokens each, V vocabulary.

/// The imported LM with LoRA and no vision side: the text-only engine behind `pilot bench --model`
/// and the logits check of a PEFT export. It is the same `LanguageModel` the multimodal model runs
/// (frozen shared base, unmerged LoRA, recomputed attention), fed token embeddings at every position.
public final class TextLoRAModel {
    public let config: ModelConfig
    public let parameters: ParameterStore
    public let optimizer: AdamW
    public let base: PretrainedBase
    let lm: LanguageModel
    let maxBatch: Int
    private var targets: [Int32]

    /// - Parameters:
    ///   - seqLen: T, tokens per sequence.
    ///   - bInitStd: LoRA B's init (0: the adapter starts as a no-op, as in peft).
    ///   - recomputeActivations: keep only each layer's input, recompute the layer in the backward pass.
    public init(base: PretrainedBase, rank: Int = 16, alpha: Float = 32, targets: [String]? = nil,
                maxBatch: Int, seqLen: Int, seed: UInt64 = 0, bInitStd: Float = 0,
                optimizer: AdamW.Parameters = .init(), recomputeActivations: Bool = false) throws {
        var c = base.modelConfig(.tiny)
        c.contextLength = seqLen + c.visualTokens   // keeps validate()'s context rule; T below is seqLen
        c.loraRank = rank; c.loraAlpha = alpha; c.loraTargets = targets; c.loraBInitStd = bInitStd
        try c.validate()
        c.contextLength = seqLen
        config = c; self.base = base; self.maxBatch = maxBatch
        parameters = ParameterStore(specs: LanguageModel.parameterSpecs(c, loraBranches: [""]),
                                    trainableGroups: { $0 == "lora" }, seed: seed)
        self.optimizer = AdamW(count: parameters.trainableCount, parameters: optimizer)
        lm = LanguageModel(cfg: c, store: parameters, maxBatch: maxBatch, loraBranches: [""], base: base.weights,
                           recomputeActivations: recomputeActivations)
        self.targets = [Int32](repeating: -1, count: maxBatch * seqLen)
    }

    private func run(_ tokens: [Int32], batch B: Int, backward: Bool) throws -> Double {
        let T = config.contextLength, C = config.width, V = config.vocabSize
        guard B >= 1, B <= maxBatch, tokens.count == B * T else {
            throw PilotError.invalidArgument("TextLoRAModel: \(tokens.count) tokens for \(B) sequences of \(T) (at most \(maxBatch) sequences)")
        }
        if let bad = tokens.first(where: { $0 < 0 || Int($0) >= V }) {
            throw PilotError.invalidArgument("TextLoRAModel: token id \(bad) is outside the vocabulary 0..<\(V)")
        }
        // next-token targets, as transformers' labels = input_ids (the last position has none)
        for b in 0..<B { for t in 0..<T { targets[b * T + t] = t + 1 < T ? tokens[b * T + t + 1] : -1 } }
        lm.prepare(localMix: 1)
        tokens.withUnsafeBufferPointer {
            lm.embed(out: lm.resid[0].pointer, tokens: $0.baseAddress!, count: B * T)
        }
        lm.forward(batch: B, lengths: nil)
        let r = targets.withUnsafeBufferPointer { lm.headLoss(batch: B, targets: $0.baseAddress!, backward: backward) }
        // the embedding is frozen, so nothing needs ∂loss/∂resid[0]
        if backward { lm.backward(batch: B, lengths: nil, inputGradient: false) }
        return r.ce
    }

    /// Bytes of the LM's activations kept from the forward to the backward pass (`LanguageModel.storedActivationBytes`).
    public var storedActivationBytes: Int { lm.storedActivationBytes }

    /// One LoRA training step (forward, backward, AdamW); returns the mean next-token CE before the update.
    @discardableResult
    public func trainStep(_ tokens: [Int32], batch: Int, learningRate: Float) throws -> Double {
        parameters.zeroGradients()
        let ce = try run(tokens, batch: batch, backward: true)
        optimizer.step(params: parameters.trainable, grads: parameters.gradients, lr: learningRate)
        return ce
    }

    /// Mean next-token CE of the batch (forward only).
    public func loss(_ tokens: [Int32], batch: Int) throws -> Double { try run(tokens, batch: batch, backward: false) }

    /// [B, T, V] logits at every position.
    public func logits(_ tokens: [Int32], batch B: Int) throws -> [Float] {
        let T = config.contextLength, C = config.width, V = config.vocabSize
        _ = try run(tokens, batch: B, backward: false)
        // headLoss keeps only one block of logits, so run final norm and the head on every row here,
        // a block of rows at a time through the model's buffers
        var out = [Float](repeating: 0, count: B * T * V)
        let last = lm.resid[config.layers].pointer, block = lm.logits.shape[0]
        out.withUnsafeMutableBufferPointer { o in
            for r0 in stride(from: 0, to: B * T, by: block) {
                let rows = min(block, B * T - r0)
                RMSNorm.forward(y: lm.hf.pointer, rstd: lm.rstdF.pointer, x: last + r0 * C, weight: lm.finalNorm, rows: rows, width: C, eps: config.normEps)
                lm.products.forward(y: o.baseAddress! + r0 * V, x: lm.hf.pointer, rows: rows, weight: lm.frozenHead!)
            }
        }
        return out
    }

    /// Matmul FLOPs of one training step of B×T tokens (forward; backward with input gradients through
    /// every frozen linear and the head, LoRA weight gradients; attention counted dense and once more
    /// for recomputing P). Elementwise work is not counted.
    public func analyticFLOPs(batch B: Int) -> Double {
        let c = config, T = c.contextLength, N = Double(B * T), R = Double(c.loraRank)
        let all = LanguageModel.linearShapes(c), targets = Set(c.loraTargetNames)
        let base = all.reduce(0.0) { $0 + 2 * N * Double($1.inF * $1.outF) } * Double(c.layers)
        let lora = all.filter { targets.contains($0.name) }.reduce(0.0) { $0 + 2 * N * R * Double($1.inF + $1.outF) } * Double(c.layers)
        let attn = 2 * 2 * Double(B * c.heads * T * T * c.headDim) * Double(c.layers)
        let head = 2 * Double(B * (T - 1)) * Double(c.width * c.vocabSize)
        // forward: base + lora + attn + head; backward: base (dx) + head (dx) + lora (dA, dB, dx path: 2×)
        // + attention (dP, dV, dQ, dK = 2× forward, plus q·kᵀ again)
        return (base + lora + attn + head) + (base + head + 2 * lora + 2 * attn + attn / 2)
    }
}
