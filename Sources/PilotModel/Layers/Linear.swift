import PilotTensor

// Shape letters: N rows (tokens), I input features, O output features, R LoRA rank.
// Weights are stored [I, O] so that y = x · W (the convention of the JAX reference and of HDF5 files).
// Leading dimensions (`ldx`, `ldy`) let a layer read or write a column block of a wider buffer,
// e.g. q, k and v as blocks of one [N, 3C] row.

/// A plain affine layer through the sgemm wrapper.
public enum Linear {
    /// y[N,O] = x[N,I] · W[I,O] (+ bias[O]); with `accumulate`, adds into y instead.
    @inlinable
    public static func forward(y: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>,
                               weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                               rows: Int, inFeatures: Int, outFeatures: Int,
                               ldx: Int? = nil, ldw: Int? = nil, ldy: Int? = nil, accumulate: Bool = false) {
        let ldy = ldy ?? outFeatures
        var beta: Float = accumulate ? 1 : 0
        if let bias {
            if accumulate {
                for n in 0..<rows { let r = y + n * ldy; for o in 0..<outFeatures { r[o] += bias[o] } }
            } else {
                for n in 0..<rows { (y + n * ldy).update(from: bias, count: outFeatures) }
            }
            beta = 1
        }
        sgemm(m: rows, n: outFeatures, k: inFeatures, a: x, lda: ldx ?? inFeatures,
              b: weight, ldb: ldw ?? outFeatures, beta: beta, c: y, ldc: ldy)
    }

    /// dx[N,I] += dy · Wᵀ; dW[I,O] += xᵀ · dy; dbias[O] += Σₙ dy. Each is skipped when its buffer is nil.
    @inlinable
    public static func backward(dx: UnsafeMutablePointer<Float>?, dweight: UnsafeMutablePointer<Float>?,
                                dbias: UnsafeMutablePointer<Float>?,
                                dy: UnsafePointer<Float>, x: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                rows: Int, inFeatures: Int, outFeatures: Int,
                                ldx: Int? = nil, ldw: Int? = nil, lddy: Int? = nil, lddx: Int? = nil) {
        let lddy = lddy ?? outFeatures
        if let dx {
            sgemm(transB: true, m: rows, n: inFeatures, k: outFeatures, a: dy, lda: lddy,
                  b: weight, ldb: ldw ?? outFeatures, beta: 1, c: dx, ldc: lddx ?? inFeatures)
        }
        if let dweight {
            sgemm(transA: true, m: inFeatures, n: outFeatures, k: rows, a: x, lda: ldx ?? inFeatures,
                  b: dy, ldb: lddy, beta: 1, c: dweight, ldc: outFeatures)
        }
        if let dbias {
            for n in 0..<rows { let r = dy + n * lddy; for o in 0..<outFeatures { dbias[o] += r[o] } }
        }
    }
}

/// LoRA: a frozen W plus a trainable low-rank update, y = x·W + s·(x·A)·B with s = α/r,
/// A [I,R] and B [R,O]. The forward pass saves xa = x·A [N,R] for the backward pass.
public enum LoRALinear {
    @inlinable
    public static func forward(y: UnsafeMutablePointer<Float>, xa: UnsafeMutablePointer<Float>,
                               x: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                               loraA: UnsafePointer<Float>, loraB: UnsafePointer<Float>, scale: Float,
                               rows: Int, inFeatures: Int, outFeatures: Int, rank: Int) {
        sgemm(m: rows, n: outFeatures, k: inFeatures, a: x, b: weight, c: y)
        sgemm(m: rows, n: rank, k: inFeatures, a: x, b: loraA, c: xa)
        sgemm(m: rows, n: outFeatures, k: rank, alpha: scale, a: xa, b: loraB, beta: 1, c: y)
    }

    /// dx += dy·Wᵀ + s·dy·Bᵀ·Aᵀ; dA += xᵀ·(s·dy·Bᵀ); dB += s·xaᵀ·dy. `scratch` holds [N,R].
    @inlinable
    public static func backward(dx: UnsafeMutablePointer<Float>?, dA: UnsafeMutablePointer<Float>?,
                                dB: UnsafeMutablePointer<Float>?, scratch: UnsafeMutablePointer<Float>,
                                dy: UnsafePointer<Float>, x: UnsafePointer<Float>, xa: UnsafePointer<Float>,
                                weight: UnsafePointer<Float>, loraA: UnsafePointer<Float>, loraB: UnsafePointer<Float>,
                                scale: Float, rows: Int, inFeatures: Int, outFeatures: Int, rank: Int) {
        if let dB {
            sgemm(transA: true, m: rank, n: outFeatures, k: rows, alpha: scale, a: xa, b: dy, beta: 1, c: dB)
        }
        // scratch = s · dy · Bᵀ  [N,R]
        sgemm(transB: true, m: rows, n: rank, k: outFeatures, alpha: scale, a: dy, b: loraB, c: scratch)
        if let dA {
            sgemm(transA: true, m: inFeatures, n: rank, k: rows, a: x, b: scratch, beta: 1, c: dA)
        }
        if let dx {
            sgemm(transB: true, m: rows, n: inFeatures, k: outFeatures, a: dy, b: weight, beta: 1, c: dx)
            sgemm(transB: true, m: rows, n: inFeatures, k: rank, a: scratch, b: loraA, beta: 1, c: dx)
        }
    }

    /// The merged path for evaluation: W' = W + s·A·B written into `merged` (row stride `ldm`).
    /// `merged` may alias `weight` to fold the adapter in place.
    @inlinable
    public static func merge(into merged: UnsafeMutablePointer<Float>, ldm: Int? = nil,
                             weight: UnsafePointer<Float>, loraA: UnsafePointer<Float>, loraB: UnsafePointer<Float>,
                             scale: Float, inFeatures: Int, outFeatures: Int, rank: Int) {
        let ldm = ldm ?? outFeatures
        if UnsafePointer(merged) != weight {
            for i in 0..<inFeatures { (merged + i * ldm).update(from: weight + i * outFeatures, count: outFeatures) }
        }
        sgemm(m: inFeatures, n: outFeatures, k: rank, alpha: scale, a: loraA, b: loraB, beta: 1, c: merged, ldc: ldm)
    }
}
