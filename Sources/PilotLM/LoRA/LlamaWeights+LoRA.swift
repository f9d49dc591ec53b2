import PilotCore
import PilotTensor

extension LlamaWeights {
    /// The Hugging Face weight [out, in] of `target` in layer `l`.
    func projection(_ target: LoRAAdapter.Target, layer l: Int) -> FrozenMatrix {
        let w = layers[l]
        switch target {
        case .q: return w.qProj
        case .k: return w.kProj
        case .v: return w.vProj
        case .o: return w.oProj
        case .gate: return w.gateProj
        case .up: return w.upProj
        case .down: return w.downProj
        }
    }

    /// Folds `adapter` into the weights for inference: W[out, in] += sign·(alpha/r)·(A·B)ᵀ for every targeted
    /// projection, i.e. one sgemm W += s·Bᵀ·Aᵀ each. Afterwards the plain forward computes
    /// x·Wᵀ + s·(x·A)·B, as PEFT's `merge_and_unload()` does. `sign` −1 takes a merged adapter out again
    /// (up to Float rounding, so not bit-exact). Checks every shape first (an error names the tensor and
    /// changes nothing). The weights are changed in place: every decoder over them sees the adapter.
    public func merge(_ adapter: LoRAAdapter, sign: Float = 1) throws {
        try adapter.check(against: config, model: "the model")
        guard dtype == .f32, !isShared else {
            throw PilotError.invalidArgument("merging a LoRA adapter needs the model's own f32 weights, not a \(dtype.rawValue)\(isShared ? " shared" : "") base; load the model in f32 to merge, or keep the adapter unmerged")
        }
        let r = adapter.rank, s = sign * adapter.scale
        for l in 0..<adapter.layers {
            for t in adapter.targets {
                let (i, o) = t.features(config), n = LoRAAdapter.names(layer: l, target: t)
                let a = adapter[n.a]!.values, b = adapter[n.b]!.values   // [in, r], [r, out]
                let w = UnsafeMutablePointer(mutating: projection(t, layer: l).float32!)   // [out, in]
                a.withUnsafeBufferPointer { pa in
                    b.withUnsafeBufferPointer { pb in
                        // C[out, in] = s · op(B)[out, r] · op(A)[r, in] + C, op = transpose of both
                        sgemm(transA: true, transB: true, m: o, n: i, k: r, alpha: s,
                              a: pb.baseAddress!, lda: o, b: pa.baseAddress!, ldb: r, beta: 1, c: w, ldc: i)
                    }
                }
            }
        }
    }
}

extension LoRAAdapter {
    /// `check(against:model:)` with the adapter directory in front of the message.
    func check(against config: LlamaConfig, model: String, adapterDirectory: String) throws {
        do {
            try check(against: config, model: model)
        } catch PilotError.invalidArgument(let m) {
            throw PilotError.invalidArgument("\(adapterDirectory): \(m)")
        }
    }
}

extension LlamaWeights {
    /// `merge` with errors that name the adapter directory and the model directory.
    public func merge(_ adapter: LoRAAdapter, model: String, adapterDirectory: String) throws {
        try adapter.check(against: config, model: model, adapterDirectory: adapterDirectory)
        try merge(adapter)
    }
}
