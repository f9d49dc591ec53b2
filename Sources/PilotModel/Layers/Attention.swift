import Foundation
import PilotTensor

// Shape letters: B sequences, T positions, H heads, D head width, C = H·D.
// q, k, v and the output o are [B,T,…] row buffers: head h of row (b,t) is at ((b·T + t)·ld + h·D).
// Probabilities P are [B,H,T,T]. Each (b,h) is two sgemm calls forward and four backward.

/// Scaled dot-product multi-head attention, causal (LM) or bidirectional (ViT), with key padding:
/// keys at positions ≥ lengths[b] are masked out.
public struct Attention {
    public let batch: Int, seqLen: Int, heads: Int, headDim: Int
    public let causal: Bool

    public init(batch: Int, seqLen: Int, heads: Int, headDim: Int, causal: Bool) {
        self.batch = batch; self.seqLen = seqLen; self.heads = heads; self.headDim = headDim; self.causal = causal
    }

    /// Number of keys query i of a sequence of valid length `len` may see.
    @inlinable
    func keyLimit(_ i: Int, _ len: Int) -> Int { causal ? min(i + 1, len) : len }

    /// o = softmax(q·kᵀ/√D + mask)·v; saves P in `probs` [B,H,T,T]. `lengths` nil means all T valid.
    @inlinable
    public func forward(o: UnsafeMutablePointer<Float>, ldo: Int, probs: UnsafeMutablePointer<Float>,
                        q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>, ldqkv: Int,
                        lengths: UnsafePointer<Int32>?) {
        let T = seqLen, D = headDim, H = heads
        let scale = 1 / Float(D).squareRoot()
        let c = (self, o, ldo, probs, q, k, v, ldqkv, lengths, scale)
        Parallel.rows(batch * H, costPerItem: 4 * T * T * D, context: c) { c, lo, hi in
            let (a, o, ldo, probs, q, k, v, ldqkv, lengths, scale) = c
            let T = a.seqLen, D = a.headDim, H = a.heads
            for bh in lo..<hi {
                let b = bh / H, h = bh % H
                let len = lengths.map { Int($0[b]) } ?? T
                let qb = q + b * T * ldqkv + h * D, kb = k + b * T * ldqkv + h * D, vb = v + b * T * ldqkv + h * D
                let p = probs + bh * T * T
                sgemm(transB: true, m: T, n: T, k: D, alpha: scale, a: qb, lda: ldqkv, b: kb, ldb: ldqkv, c: p, ldc: T)
                for i in 0..<T {
                    let row = p + i * T
                    let lim = a.keyLimit(i, len)
                    if lim == 0 { row.update(repeating: 0, count: T); continue }
                    let mx = VectorMath.max(row, count: lim)
                    let s = VectorMath.expShifted(row, into: row, count: lim, shift: mx)
                    VectorMath.scale(row, count: lim, by: 1 / s)
                    (row + lim).update(repeating: 0, count: T - lim)
                }
                sgemm(m: T, n: D, k: T, a: p, lda: T, b: vb, ldb: ldqkv, c: o + b * T * ldo + h * D, ldc: ldo)
            }
        }
    }

    /// Writes (not adds) dq, dk, dv from do. `scratch` holds one [T,T] block per worker thread.
    @inlinable
    public func backward(dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>,
                         dv: UnsafeMutablePointer<Float>, lddqkv: Int,
                         dout: UnsafePointer<Float>, lddo: Int, probs: UnsafePointer<Float>,
                         q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>, ldqkv: Int,
                         scratch: UnsafeMutablePointer<Float>) {
        let T = seqLen, D = headDim, H = heads
        let scale = 1 / Float(D).squareRoot()
        let c = (self, dq, dk, dv, lddqkv, dout, lddo, probs, q, k, v, ldqkv, scratch, scale)
        Parallel.chunks(batch * H, costPerItem: 8 * T * T * D, context: c) { c, worker, lo, hi in
            let (a, dq, dk, dv, lddqkv, dout, lddo, probs, q, k, v, ldqkv, scratch, scale) = c
            let T = a.seqLen, D = a.headDim, H = a.heads
            let dp = scratch + worker * T * T
            for bh in lo..<hi {
                let b = bh / H, h = bh % H
                let off = b * T * ldqkv + h * D, doff = b * T * lddqkv + h * D
                let p = probs + bh * T * T
                let dob = dout + b * T * lddo + h * D
                // dP = dO·Vᵀ ; dV = Pᵀ·dO
                sgemm(transB: true, m: T, n: T, k: D, a: dob, lda: lddo, b: v + off, ldb: ldqkv, c: dp, ldc: T)
                sgemm(transA: true, m: T, n: D, k: T, a: p, lda: T, b: dob, ldb: lddo, c: dv + doff, ldc: lddqkv)
                // dS = P ⊙ (dP − Σⱼ dP⊙P) · scale (masked entries have P = 0, so they get 0)
                for i in 0..<T {
                    let pr = p + i * T, dr = dp + i * T
                    var s: Float = 0
                    for j in 0..<T { s += pr[j] * dr[j] }
                    for j in 0..<T { dr[j] = pr[j] * (dr[j] - s) * scale }
                }
                // dQ = dS·K ; dK = dSᵀ·Q
                sgemm(m: T, n: D, k: T, a: dp, lda: T, b: k + off, ldb: ldqkv, c: dq + doff, ldc: lddqkv)
                sgemm(transA: true, m: T, n: D, k: T, a: dp, lda: T, b: q + off, ldb: ldqkv, c: dk + doff, ldc: lddqkv)
            }
        }
    }
}
