import COpenBLAS

/// Every matrix product in the project goes through here: row-major
/// C[M,N] = alpha · op(A)[M,K] · op(B)[K,N] + beta · C, with op = transpose when asked.
/// Leading dimensions default to the packed row-major ones.
@inlinable
public func sgemm(transA: Bool = false, transB: Bool = false,
                  m: Int, n: Int, k: Int,
                  alpha: Float = 1,
                  a: UnsafePointer<Float>, lda: Int? = nil,
                  b: UnsafePointer<Float>, ldb: Int? = nil,
                  beta: Float = 0,
                  c: UnsafeMutablePointer<Float>, ldc: Int? = nil) {
    if m == 0 || n == 0 { return }
    let lda = lda ?? (transA ? m : k)
    let ldb = ldb ?? (transB ? k : n)
    let ldc = ldc ?? n
    if k == 0 {
        // BLAS would leave C untouched for beta == 1 and scale otherwise; make that explicit.
        for i in 0..<m { for j in 0..<n { c[i * ldc + j] = beta == 0 ? 0 : beta * c[i * ldc + j] } }
        return
    }
    if GEMMProfile.enabled {
        let t0 = GEMMProfile.now()
        defer { GEMMProfile.record(transA: transA, transB: transB, m: m, n: n, k: k, since: t0) }
        sgemmDispatch(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
                      beta: beta, c: c, ldc: ldc)
        return
    }
    sgemmDispatch(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
                  beta: beta, c: c, ldc: ldc)
}

/// `sgemm` after its argument handling: split over the workers, or one OpenBLAS call.
@inlinable
func sgemmDispatch(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float, a: UnsafePointer<Float>, lda: Int,
                   b: UnsafePointer<Float>, ldb: Int, beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
    if Parallel.splitsGEMM && 2 * m * n * k >= gemmSplitThreshold && max(m, n) >= 32 {
        sgemmSplit(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda,
                   b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
        return
    }
    cblas_sgemm(CblasRowMajor,
                transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                Int32(m), Int32(n), Int32(k), alpha,
                a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
}

/// Products below this many flops run whole (single-threaded) even at more than one thread:
/// a hand-off costs a few microseconds, and the attention heads' 64³ products are parallelised
/// one level up (over heads) instead.
public let gemmSplitThreshold = 1 << 21

/// Splits C into 2·`Parallel.threads` fixed blocks of rows (when m ≥ n) or of columns, aligned to the
/// kernel's 16-row / 8-column tiles, and runs each block as its own single-threaded OpenBLAS call.
/// The blocks depend only on the shape and the thread count, so results are reproducible.
@usableFromInline
func sgemmSplit(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
    let byRows = m >= n
    let extent = byRows ? m : n, align = byRows ? 16 : 8
    // two chunks per thread, so that a thread slowed by a foreign load leaves its second chunk to the others
    let parts = min(2 * Parallel.threads, max(1, extent / (2 * align)))
    Parallel.run(parts: parts, GEMMSplitJob(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha,
                                            a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc,
                                            byRows: byRows, extent: extent, align: align, parts: parts))
}

/// One block of `sgemmSplit`: rows (or columns) `bound(p) ..< bound(p+1)` of C as a single-threaded
/// OpenBLAS call. A plain value, so handing it to the workers allocates nothing.
@usableFromInline
struct GEMMSplitJob: ParallelJob {
    let transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float
    let a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int
    let beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
    let byRows: Bool, extent: Int, align: Int, parts: Int

    @usableFromInline
    func run(part p: Int) {
        func bound(_ q: Int) -> Int { q == parts ? extent : (extent * q / parts) / align * align }
        let lo = bound(p), hi = bound(p + 1)
        if hi <= lo { return }
        let ta = transA ? CblasTrans : CblasNoTrans, tb = transB ? CblasTrans : CblasNoTrans
        if byRows {
            let ap = transA ? a + lo : a + lo * lda
            cblas_sgemm(CblasRowMajor, ta, tb, Int32(hi - lo), Int32(n), Int32(k), alpha,
                        ap, Int32(lda), b, Int32(ldb), beta, c + lo * ldc, Int32(ldc))
        } else {
            let bp = transB ? b + lo * ldb : b + lo
            cblas_sgemm(CblasRowMajor, ta, tb, Int32(m), Int32(hi - lo), Int32(k), alpha,
                        a, Int32(lda), bp, Int32(ldb), beta, c + lo, Int32(ldc))
        }
    }
}

/// The naive triple loop that `sgemm` is tested against. Accumulates in Double so that it
/// is a stricter reference than the kernel it checks.
public func referenceGEMM(transA: Bool = false, transB: Bool = false,
                          m: Int, n: Int, k: Int, alpha: Float = 1,
                          a: [Float], b: [Float], beta: Float = 0, c: inout [Float]) {
    precondition(a.count == m * k && b.count == k * n && c.count == m * n, "referenceGEMM shapes")
    for i in 0..<m {
        for j in 0..<n {
            var acc = 0.0
            for p in 0..<k {
                let av = transA ? a[p * m + i] : a[i * k + p]
                let bv = transB ? b[j * k + p] : b[p * n + j]
                acc += Double(av) * Double(bv)
            }
            c[i * n + j] = Float(Double(alpha) * acc + (beta == 0 ? 0 : Double(beta) * Double(c[i * n + j])))
        }
    }
}

extension Tensor {
    /// C = alpha · op(A) · op(B) + beta · C for 2-D tensors (leading dimensions collapse).
    public static func matmul(_ a: Tensor, transA: Bool = false, _ b: Tensor, transB: Bool = false,
                              into c: Tensor, alpha: Float = 1, beta: Float = 0) {
        let (ar, ac) = a.matrixShape, (br, bc) = b.matrixShape
        let m = transA ? ac : ar, k = transA ? ar : ac
        let k2 = transB ? bc : br, n = transB ? br : bc
        precondition(k == k2, "matmul inner dimensions differ: \(a.shape) x \(b.shape)")
        precondition(c.count == m * n, "matmul output \(c.shape) is not [\(m), \(n)]")
        sgemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha,
              a: a.pointer, b: b.pointer, beta: beta, c: c.pointer)
    }

    /// Rows × columns, with every leading dimension folded into the rows.
    public var matrixShape: (Int, Int) {
        guard let last = shape.last else { return (1, 1) }
        return (last == 0 ? 0 : count / last, last)
    }
}
