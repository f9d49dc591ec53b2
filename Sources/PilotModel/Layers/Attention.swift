import Foundation
import PilotTensor

// Shape letters: B sequences, T positions, H query heads, KV key/value heads (H/KV = G query heads
// share one), D head width, C = H·D.
// q, k, v and the output o are [B,T,…] row buffers: query head h of row (b,t) is at ((b·T + t)·ld + h·D),
// and it reads key/value head h/G at the same offset pattern from k and v.
// Probabilities P are [B,H,T,T] when they are stored; with `probs` nil they live only in per-worker
// scratch of one block of query rows ([queryBlock, T]) and are recomputed in the backward pass, so memory
// does not grow as B·H·T² per layer (nor as T² per worker). Each (b, h, query block) is two sgemm calls
// forward and four backward (five when P is recomputed), over the keys the block can see.

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

    /// Query rows per tile. Attention runs over blocks of `queryBlock` query rows, so scratch is
    /// O(queryBlock·T) per worker instead of O(T²), and a causal block only multiplies against the keys
    /// it can see (0 ..< end of the block): about 5/8 of the dense work at T = 128. 32 was the fastest
    /// of 16…128 for SmolLM2's 128×64 heads (OpenBLAS, 1 thread).
    public static let queryBlock = 32

    /// Floats of scratch the forward and backward need per worker thread (P and dP of one query block).
    public var scratchPerWorker: Int { 2 * Swift.min(seqLen, Attention.queryBlock) * seqLen }

    /// Keys the query rows i0 ..< i1 of a sequence of valid length `len` may see.
    @inlinable
    func keyCount(upTo i1: Int, _ len: Int) -> Int { causal ? Swift.min(i1, len) : len }

    /// p[i − i0, 0..<n] = softmax(q_i·kᵀ·scale + mask) for query rows i0 ..< i1 of one (b,h), n =
    /// `keyCount`; ld of p is `ldp`. Entries n ..< zeroTo of each row (and rows with no visible key) are 0.
    @inlinable
    func probabilities(_ p: UnsafeMutablePointer<Float>, ldp: Int, rows i0: Int, _ i1: Int, keys n: Int, zeroTo: Int,
                       q: UnsafePointer<Float>, k: UnsafePointer<Float>, ldqkv: Int, len: Int, scale: Float) {
        if n > 0 {
            sgemm(transB: true, m: i1 - i0, n: n, k: headDim, alpha: scale, a: q + i0 * ldqkv, lda: ldqkv, b: k, ldb: ldqkv, c: p, ldc: ldp)
        }
        for i in i0..<i1 {
            let row = p + (i - i0) * ldp
            let lim = keyLimit(i, len)
            if lim == 0 { row.update(repeating: 0, count: zeroTo); continue }
            let mx = VectorMath.max(row, count: lim)
            let s = VectorMath.expShifted(row, into: row, count: lim, shift: mx)
            VectorMath.scale(row, count: lim, by: 1 / s)
            (row + lim).update(repeating: 0, count: zeroTo - lim)
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
            let T = a.seqLen, D = a.headDim, H = a.heads, G = a.group, QB = Attention.queryBlock
            for bh in lo..<hi {
                let b = bh / H, h = bh % H, kvh = h / G
                let len = lengths.map { Int($0[b]) } ?? T
                let qb = q + b * T * ldqkv + h * D, kb = k + b * T * ldqkv + kvh * D, vb = v + b * T * ldqkv + kvh * D
                let ob = o + b * T * ldo + h * D
                for i0 in stride(from: 0, to: T, by: QB) {
                    let i1 = Swift.min(i0 + QB, T), n = a.keyCount(upTo: i1, len)
                    let p = probs.map { $0 + bh * T * T + i0 * T } ?? (scratch! + worker * a.scratchPerWorker)
                    a.probabilities(p, ldp: T, rows: i0, i1, keys: n, zeroTo: probs == nil ? n : T,
                                    q: qb, k: kb, ldqkv: ldqkv, len: len, scale: scale)
                    if n == 0 {
                        for i in i0..<i1 { (ob + i * ldo).update(repeating: 0, count: D) }
                    } else {
                        sgemm(m: i1 - i0, n: D, k: n, a: p, lda: T, b: vb, ldb: ldqkv, c: ob + i0 * ldo, ldc: ldo)
                    }
                }
            }
        }
    }

    /// Writes (not adds) dq, dk, dv from do. `scratch` holds `scratchPerWorker` floats per worker
    /// thread. With `probs` nil, P is recomputed from q and k (then `lengths` must be the forward's).
    /// Work is split over (b, key/value head); the G query heads that share dk and dv, and the query
    /// blocks, add into them in a fixed order (so the bits do not depend on the thread count).
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
            let T = a.seqLen, D = a.headDim, H = a.heads, KV = a.kvHeads, G = a.group, QB = Attention.queryBlock
            let dp = scratch + worker * a.scratchPerWorker
            let pr = dp + Swift.min(T, QB) * T
            for bkv in lo..<hi {
                let b = bkv / KV, kvh = bkv % KV
                let len = lengths.map { Int($0[b]) } ?? T
                let kvOff = b * T * ldqkv + kvh * D, dkvOff = b * T * lddqkv + kvh * D
                for t in 0..<T {
                    (dk + dkvOff + t * lddqkv).update(repeating: 0, count: D)
                    (dv + dkvOff + t * lddqkv).update(repeating: 0, count: D)
                }
                for g in 0..<G {
                    let h = kvh * G + g, bh = b * H + h
                    let off = b * T * ldqkv + h * D, doff = b * T * lddqkv + h * D
                    let dob = dout + b * T * lddo + h * D
                    for i0 in stride(from: 0, to: T, by: QB) {
                        let i1 = Swift.min(i0 + QB, T), rows = i1 - i0, n = a.keyCount(upTo: i1, len)
                        if n == 0 {
                            for i in i0..<i1 { (dq + doff + i * lddqkv).update(repeating: 0, count: D) }
                            continue
                        }
                        let p: UnsafePointer<Float>
                        if let probs { p = probs + bh * T * T + i0 * T } else {
                            a.probabilities(pr, ldp: T, rows: i0, i1, keys: n, zeroTo: n, q: q + off, k: k + kvOff,
                                            ldqkv: ldqkv, len: len, scale: scale)
                            p = UnsafePointer(pr)
                        }
                        let doi = dob + i0 * lddo
                        // dP = dO·Vᵀ ; dV += Pᵀ·dO (keys 0 ..< n only)
                        sgemm(transB: true, m: rows, n: n, k: D, a: doi, lda: lddo, b: v + kvOff, ldb: ldqkv, c: dp, ldc: T)
                        sgemm(transA: true, m: n, n: D, k: rows, a: p, lda: T, b: doi, ldb: lddo, beta: 1, c: dv + dkvOff, ldc: lddqkv)
                        // dS = P ⊙ (dP − Σⱼ dP⊙P) · scale (masked entries have P = 0, so they get 0)
                        for r in 0..<rows {
                            let prow = p + r * T, dr = dp + r * T
                            var s: Float = 0
                            for j in 0..<n { s += prow[j] * dr[j] }
                            for j in 0..<n { dr[j] = prow[j] * (dr[j] - s) * scale }
                        }
                        // dQ = dS·K ; dK += dSᵀ·Q
                        sgemm(m: rows, n: D, k: n, a: dp, lda: T, b: k + kvOff, ldb: ldqkv, c: dq + doff + i0 * lddqkv, ldc: lddqkv)
                        sgemm(transA: true, m: n, n: D, k: rows, a: dp, lda: T, b: q + off + i0 * ldqkv, ldb: ldqkv,
                              beta: 1, c: dk + dkvOff, ldc: lddqkv)
                    }
                }
            }
        }
    }
}
