/// Products against a frozen weight W [O, I] (`FrozenMatrix`, Hugging Face [out, in] layout):
///
///     forward    y[N, O]  = x[N, I]·Wᵀ (+ y)
///     backward   dx[N, I] = dy[N, O]·W (+ dx)
///
/// An f32 weight is multiplied in place with one sgemm each, exactly as the engine did before it had
/// dtypes (the same bits).
///
/// A bf16 weight, on a CPU with a bf16 instruction set (`BF16Kernel`), runs on oneDNN's bf16 matmul
/// (`BF16Products`): the activations (x, or dy) are rounded to bf16, the weight is read in place, and
/// oneDNN accumulates and writes Float32; about 2× sgemm's speed on AVX512_BF16 (docs/performance.md).
///
/// A q8 weight on such a CPU runs on the same kernel a tile of rows at a time: each tile is decoded to
/// Float32 exactly (q·d), rounded to bf16 (to nearest even) and multiplied on oneDNN; the forward writes
/// a block of y's columns per tile, the backward adds each tile's share of dx in tile order. The
/// rounding of q·d to bf16 (relative 2⁻⁹, against Q8_0's own error of up to 2⁻⁸ of its block's largest
/// value) is the price of running at bf16's speed rather than sgemm's (docs/models.md, "Base dtypes").
///
/// Otherwise (q8 or bf16 without such a CPU or with `PILOT_BF16_KERNEL=off`) the weight is decoded a tile
/// of rows at a time into a Float32 scratch buffer, each tile followed by its sgemm: the forward writes
/// a block of y's columns per tile, the backward adds each tile's share of dx in tile order. Tiles
/// depend only on the shape, so the results are reproducible; the decoding costs O·I per product
/// against the product's 2·N·O·I flops. The two bf16 paths give different bits (the kernel also rounds
/// the activations), each reproducible on its own.
public final class FrozenProducts: @unchecked Sendable {
    /// Float32 values of one tile at most (8 MiB): big enough for OpenBLAS to run near its peak.
    public static let tileValues = 1 << 21
    private var scratch: UnsafeMutablePointer<Float>
    private var capacity: Int
    /// A q8 tile rounded to bf16 for the kernel.
    private var bf16Tile = UnsafeMutablePointer<UInt16>.allocate(capacity: 1)
    private var bf16TileCapacity = 0
    /// The bf16 kernel's state, nil when bf16 weights take the decode+sgemm path.
    private let bf16: BF16Products?

    /// Whether bf16 weights run on oneDNN's bf16 kernel here.
    public var usesBF16Kernel: Bool { bf16 != nil }

    /// `bf16Kernel`: run bf16 weights on oneDNN's bf16 matmul; by default where this CPU has one and
    /// `PILOT_BF16_KERNEL` is not `off` (`BF16Kernel.isUsable`). Without such a CPU it is ignored.
    public init(bf16Kernel: Bool = BF16Kernel.isUsable) {
        capacity = 0
        scratch = .allocate(capacity: 1)
        bf16 = bf16Kernel && BF16Kernel.cpuHasBF16 ? BF16Products() : nil
    }

    deinit { scratch.deallocate(); bf16Tile.deallocate() }

    /// Rows of W per tile for `cols` inputs.
    public static func tileRows(cols: Int, rows: Int) -> Int { max(1, min(rows, tileValues / max(cols, 1))) }

    private func buffer(_ n: Int) -> UnsafeMutablePointer<Float> {
        if n > capacity {
            scratch.deallocate()
            scratch = .allocate(capacity: n)
            capacity = n
        }
        return scratch
    }

    /// Rows lo..<hi of `w` as Float32, decoded on `Parallel`'s threads (each row on its own, so the split does not matter).
    private func decode(_ w: FrozenMatrix, _ lo: Int, _ hi: Int) -> UnsafeMutablePointer<Float> {
        let out = buffer((hi - lo) * w.cols)
        Parallel.rows(hi - lo, costPerItem: w.cols, context: (w, lo, out)) { c, a, b in
            let (w, lo, out) = c
            w.decodeRows(lo + a, lo + b, into: out + a * w.cols)
        }
        return out
    }

    /// Rows lo..<hi of a q8 `w` as bf16 bits for the kernel (exact q·d in Float32, then rounded to nearest even).
    private func decodeBF16(_ w: FrozenMatrix, _ lo: Int, _ hi: Int) -> UnsafeRawPointer {
        let f = decode(w, lo, hi), n = (hi - lo) * w.cols
        if n > bf16TileCapacity {
            bf16Tile.deallocate()
            bf16Tile = .allocate(capacity: n)
            bf16TileCapacity = n
        }
        Parallel.rows(hi - lo, costPerItem: w.cols, context: (f, w.cols, bf16Tile)) { c, a, b in
            let (f, cols, out) = c
            FrozenEncoding.bf16Rows(f + a * cols, ldx: cols, rows: b - a, cols: cols, into: out + a * cols)
        }
        return UnsafeRawPointer(bf16Tile)
    }

    /// y[N, O] = x[N, I]·Wᵀ (+ y when `accumulate`); y has leading dimension `ldy` (default O).
    public func forward(y: UnsafeMutablePointer<Float>, ldy: Int? = nil, x: UnsafePointer<Float>, rows n: Int,
                        weight w: FrozenMatrix, accumulate: Bool = false) {
        let ldy = ldy ?? w.rows
        if let f = w.float32 {
            sgemm(transB: true, m: n, n: w.rows, k: w.cols, a: x, b: f, ldb: w.cols, beta: accumulate ? 1 : 0, c: y, ldc: ldy)
            return
        }
        if w.dtype == .bf16, n > 0, w.rows > 0, w.cols > 0, let bf16,
           bf16.product(m: n, n: w.rows, k: w.cols, a: x, lda: w.cols, b: w.raw, transB: true, ldb: w.cols,
                        c: y, ldc: ldy, accumulate: accumulate) {
            return
        }
        let t = Self.tileRows(cols: w.cols, rows: w.rows)
        var lo = 0
        while lo < w.rows {
            let hi = min(w.rows, lo + t)
            if w.dtype == .q8, n > 0, w.cols > 0, let bf16,
               bf16.product(m: n, n: hi - lo, k: w.cols, a: x, lda: w.cols, b: decodeBF16(w, lo, hi), transB: true, ldb: w.cols,
                            c: y + lo, ldc: ldy, accumulate: accumulate) {
                lo = hi
                continue
            }
            sgemm(transB: true, m: n, n: hi - lo, k: w.cols, a: x, b: decode(w, lo, hi), ldb: w.cols, beta: accumulate ? 1 : 0, c: y + lo, ldc: ldy)
            lo = hi
        }
    }

    /// dx[N, I] = dy[N, O]·W (+ dx when `accumulate`); dy has leading dimension `ldy` (default O).
    public func backward(dx: UnsafeMutablePointer<Float>, dy: UnsafePointer<Float>, ldy: Int? = nil, rows n: Int,
                         weight w: FrozenMatrix, accumulate: Bool = false) {
        let ldy = ldy ?? w.rows
        if let f = w.float32 {
            sgemm(m: n, n: w.cols, k: w.rows, a: dy, lda: ldy, b: f, ldb: w.cols, beta: accumulate ? 1 : 0, c: dx, ldc: w.cols)
            return
        }
        if w.dtype == .bf16, n > 0, w.rows > 0, w.cols > 0, let bf16,
           bf16.product(m: n, n: w.cols, k: w.rows, a: dy, lda: ldy, b: w.raw, transB: false, ldb: w.cols,
                        c: dx, ldc: w.cols, accumulate: accumulate) {
            return
        }
        let t = Self.tileRows(cols: w.cols, rows: w.rows)
        var lo = 0
        while lo < w.rows {
            let hi = min(w.rows, lo + t)
            if w.dtype == .q8, n > 0, w.cols > 0, let bf16,
               bf16.product(m: n, n: w.cols, k: hi - lo, a: dy + lo, lda: ldy, b: decodeBF16(w, lo, hi), transB: false, ldb: w.cols,
                            c: dx, ldc: w.cols, accumulate: accumulate || lo > 0) {
                lo = hi
                continue
            }
            sgemm(m: n, n: w.cols, k: hi - lo, a: dy + lo, lda: ldy, b: decode(w, lo, hi), ldb: w.cols,
                  beta: (accumulate || lo > 0) ? 1 : 0, c: dx, ldc: w.cols)
            lo = hi
        }
    }
}
