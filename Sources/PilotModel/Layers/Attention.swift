import Foundation
import PilotTensor

// Shape letters: B sequences, T positions, H query heads, KV key/value heads (H/KV = G query heads
// share one), D head width, C = H·D.
// q, k, v and the output o are [B,T,…] row buffers: query head h of row (b,t) is at ((b·T + t)·ld + h·D),
// and it reads key/value head h/G at the same offset pattern from k and v.
// Probabilities P are [B,H,T,T] when they are stored; with `probs` nil they are recomputed in the
// backward pass into per-worker [T,T] scratch, so memory does not grow as B·H·T² per layer.
// Each (b,h) is two sgemm calls forward and four backward (five when P is recomputed).

/// Scaled dot-product multi-head attention (grouped-query when kvHeads < heads), causal (LM) or
/// bidirectional (ViT), with key padding: keys at positions ≥ lengths[b] are masked out.
public struct Attention {
    public let batch: Int, seqLen: Int, heads: Int, headDim: Int
    public let kvHeads: Int
    public let causal: Bool

    public init(batch: Int, seqLen: Int, heads: Int, headDim: Int, kvHeads: Int? = nil, causal: Bool) {
        self.batch = batch; self.seqLen = seqLen; self.heads = heads; self.headDim = headDim
        self.kvHeads = kvHeads ?? heads; self.causal = causal
        precondition(heads % self.kvHeads == 0, "attention: \(heads) heads are not a multiple of \(self.kvHeads) key/value heads")
    }

    /// Query heads per key/value head.
    public var group: Int { heads / kvHeads }

    /// Number of keys query i of a sequence of valid length `len` may see.
    @inlinable
    func keyLimit(_ i: Int, _ len: Int) -> Int { causal ? min(i + 1, len) : len }

    /// Floats of scratch the recomputing forward and backward need per worker thread.
    public var scratchPerWorker: Int { 2 * seqLen * seqLen }

    /// p[T,T] = softmax(q·kᵀ·scale + mask) for one (b,h); rows with no visible key are zero.
    @inlinable
    func probabilities(_ p: UnsafeMutablePointer<Float>, q: UnsafePointer<Float>, k: UnsafePointer<Float>,
                       ldqkv: Int, len: Int, scale: Float) {
        let T = seqLen
        sgemm(transB: true, m: T, n: T, k: headDim, alpha: scale, a: q, lda: ldqkv, b: k, ldb: ldqkv, c: p, ldc: T)
        for i in 0..<T {
            let row = p + i * T
            let lim = keyLimit(i, len)
            if lim == 0 { row.update(repeating: 0, count: T); continue }
            let mx = VectorMath.max(row, count: lim)
            let s = VectorMath.expShifted(row, into: row, count: lim, shift: mx)
            VectorMath.scale(row, count: lim, by: 1 / s)
            (row + lim).update(repeating: 0, count: T - lim)
        }
    }

    /// o = softmax(q·kᵀ/√D + mask)·v. Saves P in `probs` [B,H,T,T] when given; otherwise uses
    /// `scratch` (`scratchPerWorker` floats per worker thread). `lengths` nil means all T valid.
    @inlinable
    public func forward(o: UnsafeMutablePointer<Float>, ldo: Int, probs: UnsafeMutablePointer<Float>?,
                        q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>, ldqkv: Int,
                        lengths: UnsafePointer<Int32>?, scratch: UnsafeMutablePointer<Float>? = nil) {
        precondition(probs != nil || scratch != nil, "attention: give probs or scratch")
        let T = seqLen, D = headDim, H = heads
        let scale = 1 / Float(D).squareRoot()
        let c = (self, o, ldo, probs, q, k, v, ldqkv, lengths, scale, scratch)
        Parallel.chunks(batch * H, costPerItem: 4 * T * T * D, context: c) { c, worker, lo, hi in
            let (a, o, ldo, probs, q, k, v, ldqkv, lengths, scale, scratch) = c
            let T = a.seqLen, D = a.headDim, H = a.heads, G = a.group
            for bh in lo..<hi {
                let b = bh / H, h = bh % H, kvh = h / G
                let len = lengths.map { Int($0[b]) } ?? T
                let qb = q + b * T * ldqkv + h * D, kb = k + b * T * ldqkv + kvh * D, vb = v + b * T * ldqkv + kvh * D
                let p = probs.map { $0 + bh * T * T } ?? (scratch! + worker * a.scratchPerWorker)
                a.probabilities(p, q: qb, k: kb, ldqkv: ldqkv, len: len, scale: scale)
                sgemm(m: T, n: D, k: T, a: p, lda: T, b: vb, ldb: ldqkv, c: o + b * T * ldo + h * D, ldc: ldo)
            }
        }
    }

    /// Writes (not adds) dq, dk, dv from do. `scratch` holds `scratchPerWorker` floats per worker
    /// thread. With `probs` nil, P is recomputed from q and k (then `lengths` must be the forward's).
    /// Work is split over (b, key/value head), so the G query heads that share dk and dv add into them
    /// in a fixed order.
    @inlinable
    public func backward(dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>,
                         dv: UnsafeMutablePointer<Float>, lddqkv: Int,
                         dout: UnsafePointer<Float>, lddo: Int, probs: UnsafePointer<Float>?,
                         q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>, ldqkv: Int,
                         scratch: UnsafeMutablePointer<Float>, lengths: UnsafePointer<Int32>? = nil) {
        let T = seqLen, D = headDim
        let scale = 1 / Float(D).squareRoot()
        let c = (self, dq, dk, dv, lddqkv, dout, lddo, probs, q, k, v, ldqkv, scratch, scale, lengths)
        Parallel.chunks(batch * kvHeads, costPerItem: 8 * T * T * D * group, context: c) { c, worker, lo, hi in
            let (a, dq, dk, dv, lddqkv, dout, lddo, probs, q, k, v, ldqkv, scratch, scale, lengths) = c
            let T = a.seqLen, D = a.headDim, H = a.heads, KV = a.kvHeads, G = a.group
            let dp = scratch + worker * a.scratchPerWorker
            let pr = dp + T * T
            for bkv in lo..<hi {
                let b = bkv / KV, kvh = bkv % KV
                let len = lengths.map { Int($0[b]) } ?? T
                let kvOff = b * T * ldqkv + kvh * D, dkvOff = b * T * lddqkv + kvh * D
                for g in 0..<G {
                    let h = kvh * G + g, bh = b * H + h
                    let off = b * T * ldqkv + h * D, doff = b * T * lddqkv + h * D
                    let p: UnsafePointer<Float>
                    if let probs { p = probs + bh * T * T } else {
                        a.probabilities(pr, q: q + off, k: k + kvOff, ldqkv: ldqkv, len: len, scale: scale)
                        p = UnsafePointer(pr)
                    }
                    let dob = dout + b * T * lddo + h * D
                    let beta: Float = g == 0 ? 0 : 1
                    // dP = dO·Vᵀ ; dV (+)= Pᵀ·dO
                    sgemm(transB: true, m: T, n: T, k: D, a: dob, lda: lddo, b: v + kvOff, ldb: ldqkv, c: dp, ldc: T)
                    sgemm(transA: true, m: T, n: D, k: T, a: p, lda: T, b: dob, ldb: lddo, beta: beta, c: dv + dkvOff, ldc: lddqkv)
                    // dS = P ⊙ (dP − Σⱼ dP⊙P) · scale (masked entries have P = 0, so they get 0)
                    for i in 0..<T {
                        let prow = p + i * T, dr = dp + i * T
                        var s: Float = 0
                        for j in 0..<T { s += prow[j] * dr[j] }
                        for j in 0..<T { dr[j] = prow[j] * (dr[j] - s) * scale }
                    }
                    // dQ = dS·K ; dK (+)= dSᵀ·Q
                    sgemm(m: T, n: D, k: T, a: dp, lda: T, b: k + kvOff, ldb: ldqkv, c: dq + doff, ldc: lddqkv)
                    sgemm(transA: true, m: T, n: D, k: T, a: dp, lda: T, b: q + off, ldb: ldqkv, beta: beta, c: dk + dkvOff, ldc: lddqkv)
                }
            }
        }
    }
}
