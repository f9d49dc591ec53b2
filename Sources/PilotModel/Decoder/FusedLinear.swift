import PilotTensor

// Shape letters: N rows, I input width, O = Σ member widths, P LoRA branches, R rank.

/// Bias-free linears that read the same input (q,k,v or gate,up), each with zero or more LoRA
/// branches. Two ways to hold the base:
/// - `.merged` (the built-in LM, whose base the model owns): ONE sgemm over merged weights
///   W' = [W_1 + Σ s·A·B | W_2 + … ] [I, O]. The merge costs 2·I·R·O flops per branch, far less than
///   the skinny (x·A)·B products it replaces, and the backward pass gets dx = dy·W'ᵀ (which already
///   includes the LoRA path) in one sgemm too.
/// - `.frozen` (an imported pretrained LM, shared by every model on the rank and never written):
///   the base is one [O, I] block in Hugging Face layout (q,k,v and gate,up are contiguous there),
///   a `FrozenMatrix` in f32, bf16 or q8 read in place (`FrozenProducts`), so no second copy exists. y = x·Wᵀ + Σ s·(x·A)·B and
///   dx = dy·W + Σ s·(dy·Bᵀ)·Aᵀ; the LoRA products are skinny (R columns) and cost about 5% of the base.
/// x·[A_1 | A_2 | …] [N, P·R] is kept for dB, and dA for all branches comes from one sgemm.
final class FusedLinear {
    struct Member {
        let weight: UnsafeMutablePointer<Float>?       // [I, out] base (merged mode)
        let dweight: UnsafeMutablePointer<Float>?
        let out: Int
        let column: Int                                // first column in the fused output
    }
    struct Branch {
        let member: Int
        let a: UnsafeMutablePointer<Float>             // [I, R]
        let b: UnsafeMutablePointer<Float>             // [R, out]
        let da: UnsafeMutablePointer<Float>?
        let db: UnsafeMutablePointer<Float>?
        let baseScale: Float
        let isLocal: Bool                              // FedDPA's local branch (scaled by the mix)
        var scale: Float
    }

    let inFeatures: Int, outTotal: Int, rank: Int
    let members: [Member]
    var branches: [Branch]
    /// [I, O] merged weights (merged mode only).
    let merged: Tensor?
    /// [O, I] frozen base in Hugging Face layout (frozen mode only), and the products against it.
    let frozenBase: FrozenMatrix?
    let products: FrozenProducts?
    /// [O] frozen bias (Qwen2's q|k|v, Llama's `attention_bias`); frozen mode only, no gradient.
    let frozenBias: UnsafePointer<Float>?
    /// [I, P·R] A matrices side by side, and their gradient.
    let packedA: Tensor
    let dPackedA: Tensor
    /// Whether any LoRA branch trains (then x·A is kept and dA, dB are computed).
    let trainsLoRA: Bool
    /// Frozen mode: one row goes through `gemvRow` instead of sgemm (inference-only decoders).
    var singleRowGEMV = false

    /// Merged mode: the base members are [I, out] parameters of the model.
    init(inFeatures: Int, rank: Int, members: [Member], branches: [Branch]) {
        self.inFeatures = inFeatures; self.rank = rank; self.members = members; self.branches = branches
        outTotal = members.reduce(0) { $0 + $1.out }
        merged = Tensor(shape: [inFeatures, outTotal])
        frozenBase = nil; frozenBias = nil; products = nil
        packedA = Tensor(shape: [inFeatures, max(1, branches.count * rank)])
        dPackedA = Tensor(shape: [inFeatures, max(1, branches.count * rank)])
        trainsLoRA = branches.contains { $0.da != nil || $0.db != nil }
    }

    /// Frozen mode: `base` is [Σ outs, I] row-major (Hugging Face [out, in]), read in place; `bias` [Σ outs] likewise.
    init(inFeatures: Int, rank: Int, frozenBase base: FrozenMatrix, products: FrozenProducts, bias: UnsafePointer<Float>? = nil,
         outs: [Int], branches: [Branch]) {
        precondition(base.cols == inFeatures && base.rows == outs.reduce(0, +), "FusedLinear: a [\(base.rows), \(base.cols)] base for \(outs) × \(inFeatures)")
        self.inFeatures = inFeatures; self.rank = rank; self.branches = branches
        var col = 0
        members = outs.map { o in defer { col += o }; return Member(weight: nil, dweight: nil, out: o, column: col) }
        outTotal = col
        merged = nil
        frozenBase = base; frozenBias = bias; self.products = products
        packedA = Tensor(shape: [inFeatures, max(1, branches.count * rank)])
        dPackedA = Tensor(shape: [inFeatures, max(1, branches.count * rank)])
        trainsLoRA = branches.contains { $0.da != nil || $0.db != nil }
    }

    var packedWidth: Int { branches.count * rank }
    var isFrozenMode: Bool { frozenBase != nil }

    /// Recomputes W' (merged mode), the branch scales and the packed A from the current parameters
    /// (once per forward pass).
    func prepare(localMix: Float) {
        let I = inFeatures, O = outTotal, R = rank, PR = packedWidth
        if let merged {
            let dst = merged.pointer, members = self.members
            Parallel.rows(I, costPerItem: O, context: (dst, O, members)) { k, lo, hi in
                let (dst, O, members) = k
                for m in members {
                    for i in lo..<hi { (dst + i * O + m.column).update(from: m.weight! + i * m.out, count: m.out) }
                }
            }
        }
        for p in branches.indices {
            let br = branches[p]
            let s = br.baseScale * (br.isLocal ? localMix : 1)
            branches[p].scale = s
            let m = members[br.member]
            if let merged {
                sgemm(m: I, n: m.out, k: R, alpha: s, a: br.a, b: br.b, beta: 1, c: merged.pointer + m.column, ldc: O)
            }
            if trainsLoRA || isFrozenMode {
                for i in 0..<I { (packedA.pointer + i * PR + p * R).update(from: br.a + i * R, count: R) }
            }
        }
    }

    /// y[N,O] = x·W' (+ y when accumulate); xa[N,P·R] = x·[A…] when LoRA trains. In frozen mode `xa`
    /// is required whenever there are branches (it carries the LoRA path).
    func forward(y: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>, xa: UnsafeMutablePointer<Float>?,
                 rows: Int, accumulate: Bool = false) {
        if let merged {
            sgemm(m: rows, n: outTotal, k: inFeatures, a: x, b: merged.pointer, beta: accumulate ? 1 : 0, c: y)
            if trainsLoRA, let xa {
                sgemm(m: rows, n: packedWidth, k: inFeatures, a: x, b: packedA.pointer, c: xa)
            }
            return
        }
        let I = inFeatures, O = outTotal, R = rank, PR = packedWidth
        let base = frozenBase!
        if singleRowGEMV && rows == 1, let w = base.float32 {
            gemvRow(y: y, w: w, x: x, outFeatures: O, inFeatures: I, accumulate: accumulate)
        } else {
            products!.forward(y: y, x: x, rows: rows, weight: base, accumulate: accumulate)
        }
        if let bias = frozenBias {
            for r in 0..<rows { let yr = y + r * O; for j in 0..<O { yr[j] += bias[j] } }
        }
        guard PR > 0 else { return }
        guard let xa else { preconditionFailure("FusedLinear: frozen mode needs an x·A buffer for its LoRA branches") }
        sgemm(m: rows, n: PR, k: I, a: x, b: packedA.pointer, c: xa)
        for (p, br) in branches.enumerated() {
            let m = members[br.member]
            sgemm(m: rows, n: m.out, k: R, alpha: br.scale, a: xa + p * R, lda: PR, b: br.b, ldb: m.out,
                  beta: 1, c: y + m.column, ldc: O)
        }
    }

    /// Only the xa[N,P·R] = x·[A…] that `forward` keeps for the backward pass (when it keeps one), by the
    /// same sgemm: a recomputed layer's last linear, whose output y already exists.
    func forwardLoRAInput(x: UnsafePointer<Float>, xa: UnsafeMutablePointer<Float>, rows: Int) {
        guard isFrozenMode ? packedWidth > 0 : trainsLoRA else { return }
        sgemm(m: rows, n: packedWidth, k: inFeatures, a: x, b: packedA.pointer, c: xa)
    }

    /// dx (+)= dy·W'ᵀ; LoRA and base-weight gradients are added into their `d…` buffers.
    /// `t` is scratch [N, P·R].
    func backward(dx: UnsafeMutablePointer<Float>?, accumulateDx: Bool, dy: UnsafePointer<Float>,
                  x: UnsafePointer<Float>, xa: UnsafePointer<Float>?, rows: Int, t: UnsafeMutablePointer<Float>) {
        let I = inFeatures, O = outTotal, R = rank, PR = packedWidth
        // t = s·dy·Bᵀ is needed for dA, and in frozen mode for dx's LoRA path too
        let needT = (trainsLoRA && xa != nil) || (isFrozenMode && dx != nil && PR > 0)
        if needT {
            for (p, br) in branches.enumerated() {
                let m = members[br.member]
                if trainsLoRA, let xa, let db = br.db {
                    sgemm(transA: true, m: R, n: m.out, k: rows, alpha: br.scale, a: xa + p * R, lda: PR,
                          b: dy + m.column, ldb: O, beta: 1, c: db, ldc: m.out)
                }
                sgemm(transB: true, m: rows, n: R, k: m.out, alpha: br.scale, a: dy + m.column, lda: O,
                      b: br.b, ldb: m.out, c: t + p * R, ldc: PR)
            }
            if trainsLoRA, xa != nil {
                sgemm(transA: true, m: I, n: PR, k: rows, a: x, lda: I, b: t, ldb: PR, c: dPackedA.pointer, ldc: PR)
                for (p, br) in branches.enumerated() {
                    guard let da = br.da else { continue }
                    for i in 0..<I {
                        let s = dPackedA.pointer + i * PR + p * R, d = da + i * R
                        for r in 0..<R { d[r] += s[r] }
                    }
                }
            }
        }
        for m in members {
            if let dw = m.dweight {
                sgemm(transA: true, m: I, n: m.out, k: rows, a: x, lda: I, b: dy + m.column, ldb: O, beta: 1, c: dw, ldc: m.out)
            }
        }
        guard let dx else { return }
        if let merged {
            sgemm(transB: true, m: rows, n: I, k: O, a: dy, lda: O, b: merged.pointer, ldb: O,
                  beta: accumulateDx ? 1 : 0, c: dx, ldc: I)
            return
        }
        products!.backward(dx: dx, dy: dy, ldy: O, rows: rows, weight: frozenBase!, accumulate: accumulateDx)
        if PR > 0 {
            sgemm(transB: true, m: rows, n: I, k: PR, a: t, lda: PR, b: packedA.pointer, ldb: PR, beta: 1, c: dx, ldc: I)
        }
    }
}
