import PilotCore

/// The bf16 kernel's half of `FrozenProducts`: C[m, n] (+)= bf16(A)[m, k]·B with B a bf16 frozen weight
/// read in place and C Float32.
///
/// The activations A are rounded to bf16 first (to nearest even, `FrozenEncoding.bf16`, as
/// `x.to(torch.bfloat16)`), into a packed buffer. The product then runs as oneDNN matmul primitives
/// (`BF16Matmul`), split over the engine's threads the way `sgemm` splits: at more than one thread, a
/// product of ≥ 2 MFLOP becomes 2·threads fixed blocks of C's rows (or, when C has few rows, of its
/// columns), each one single-threaded primitive. The blocks depend only on the shape and the thread
/// count, and each primitive's order of summation only on its own shape, so the results are bitwise
/// reproducible at a given thread count. Under `PILOT_GEMM_SPLIT=0` (products threaded by the
/// libraries) each product is one primitive on the engine's thread count of OpenMP threads instead.
///
/// Primitives are made once per (shape, layout, accumulate, split) and kept (at most `maxSplits`
/// products' worth; past that the cache starts again). Not thread-safe: one per `FrozenProducts`,
/// which is itself used by one thread at a time.
final class BF16Products {
    /// Products whose primitives are kept; eval and generation see many row counts.
    static let maxSplits = 64

    struct Key: Hashable {
        let m: Int, n: Int, k: Int, transB: Bool, ldb: Int, ldc: Int, accumulate: Bool, parts: Int, byRows: Bool, threads: Int
    }

    /// The primitives of one split product; `plans` is read by the worker threads.
    final class Split {
        let plans: UnsafeMutablePointer<Unmanaged<BF16Matmul>>
        let owned: [BF16Matmul]
        init(_ owned: [BF16Matmul]) {
            self.owned = owned
            plans = .allocate(capacity: max(owned.count, 1))
            for (i, p) in owned.enumerated() { plans[i] = Unmanaged.passUnretained(p) }
        }
        deinit { plans.deallocate() }
    }

    private var splits: [Key: Split] = [:]
    private var activations = UnsafeMutablePointer<UInt16>.allocate(capacity: 1)
    private var activationCapacity = 0
    /// One scratch buffer per part index (parts with one index never run at the same time).
    private var scratch = UnsafeMutablePointer<UnsafeMutableRawPointer?>.allocate(capacity: 1)
    private var scratchBytes: [Int] = []
    private var warned = false

    deinit {
        activations.deallocate()
        for i in scratchBytes.indices { scratch[i]?.deallocate() }
        scratch.deallocate()
    }

    /// How a product of this shape is split at the current thread count: (parts, by rows).
    static func split(m: Int, n: Int, k: Int) -> (parts: Int, byRows: Bool) {
        guard Parallel.splitsGEMM && 2 * m * n * k >= gemmSplitThreshold && max(m, n) >= 32 else { return (1, true) }
        // rows keep every block's A and C dense (oneDNN's brgemm kernel wants that); columns only when there are few rows
        let byRows = m >= 64 || m >= n
        let extent = byRows ? m : n, align = byRows ? 16 : 64
        return (min(2 * Parallel.threads, max(1, extent / (2 * align))), byRows)
    }

    /// Part `p`'s first row (or column) of `extent` split in `parts`, aligned like `sgemmSplit`'s blocks.
    @inline(__always)
    static func bound(_ p: Int, parts: Int, extent: Int, byRows: Bool) -> Int {
        let align = byRows ? 16 : 64
        return p == parts ? extent : (extent * p / parts) / align * align
    }

    /// C[m, n] (+)= bf16(A)·B; A [m, k] Float32 with leading dimension `lda`; B a bf16 weight's bytes, as
    /// Wᵀ (`transB`, W [n, k]) or W (W [k, n]), leading dimension `ldb`. False when oneDNN refused the
    /// shape (the caller then decodes the weight instead; a warning names the shape once).
    func product(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int, b: UnsafeRawPointer, transB: Bool, ldb: Int,
                 c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool) -> Bool {
        let (parts, byRows) = Self.split(m: m, n: n, k: k)
        let threads = Parallel.threads > 1 && !Parallel.splitsGEMM ? Parallel.threads : 1
        let key = Key(m: m, n: n, k: k, transB: transB, ldb: ldb, ldc: ldc, accumulate: accumulate, parts: parts, byRows: byRows,
                      threads: threads)
        guard let split = splits[key] ?? makeSplit(key) else { return false }
        if m * k > activationCapacity {
            activations.deallocate()
            activations = .allocate(capacity: m * k)
            activationCapacity = m * k
        }
        Parallel.rows(m, costPerItem: k, context: (a, lda, k, activations)) { ctx, lo, hi in
            let (a, lda, k, out) = ctx
            FrozenEncoding.bf16Rows(a + lo * lda, ldx: lda, rows: hi - lo, cols: k, into: out + lo * k)
        }
        let job = BF16SplitJob(plans: split.plans, scratch: scratch, a: activations, b: b, c: c, k: k, ldb: ldb, ldc: ldc,
                               transB: transB, m: m, n: n, parts: parts, byRows: byRows)
        if parts == 1 { job.run(part: 0) } else { Parallel.run(parts: parts, job) }
        return true
    }

    /// Makes (and keeps) the primitives for `key`'s blocks and grows the scratch buffers they need.
    private func makeSplit(_ key: Key) -> Split? {
        var plans: [BF16Matmul] = []
        do {
            for p in 0..<key.parts {
                let extent = key.byRows ? key.m : key.n
                let lo = Self.bound(p, parts: key.parts, extent: extent, byRows: key.byRows)
                let hi = Self.bound(p + 1, parts: key.parts, extent: extent, byRows: key.byRows)
                plans.append(try BF16Matmul(m: key.byRows ? hi - lo : key.m, n: key.byRows ? key.n : hi - lo, k: key.k,
                                            transB: key.transB, ldb: key.ldb, ldc: key.ldc, accumulate: key.accumulate,
                                            threads: key.threads))
            }
        } catch {
            if !warned {
                warned = true
                Console.error("warning: \(error); this product (\(key.m)×\(key.k)·\(key.k)×\(key.n)) decodes its bf16 weight to f32 instead")
            }
            return nil
        }
        if splits.count >= Self.maxSplits { splits.removeAll() }
        let split = Split(plans)
        splits[key] = split
        growScratch(to: plans.map(\.scratchpadBytes))
        return split
    }

    private func growScratch(to bytes: [Int]) {
        if bytes.count > scratchBytes.count {
            let grown = UnsafeMutablePointer<UnsafeMutableRawPointer?>.allocate(capacity: bytes.count)
            for i in 0..<bytes.count { grown[i] = i < scratchBytes.count ? scratch[i] : nil }
            scratch.deallocate()
            scratch = grown
            scratchBytes += [Int](repeating: 0, count: bytes.count - scratchBytes.count)
        }
        for (i, need) in bytes.enumerated() where need > scratchBytes[i] {
            scratch[i]?.deallocate()
            scratch[i] = .allocate(byteCount: need, alignment: 64)
            scratchBytes[i] = need
        }
    }
}

/// One block of a split bf16 product: rows (or columns) `bound(p) ..< bound(p+1)` of C through its
/// own primitive. A plain value, so handing it to the workers allocates nothing.
struct BF16SplitJob: ParallelJob {
    let plans: UnsafeMutablePointer<Unmanaged<BF16Matmul>>
    let scratch: UnsafeMutablePointer<UnsafeMutableRawPointer?>
    let a: UnsafePointer<UInt16>, b: UnsafeRawPointer, c: UnsafeMutablePointer<Float>
    let k: Int, ldb: Int, ldc: Int, transB: Bool, m: Int, n: Int, parts: Int, byRows: Bool

    func run(part p: Int) {
        let lo = BF16Products.bound(p, parts: parts, extent: byRows ? m : n, byRows: byRows)
        let plan = plans[p].takeUnretainedValue()
        if byRows {
            plan.run(a: a + lo * k, b: b, c: c + lo * ldc, scratch: scratch[p])
        } else {
            plan.run(a: a, b: b + 2 * (transB ? lo * ldb : lo), c: c + lo, scratch: scratch[p])
        }
    }
}
