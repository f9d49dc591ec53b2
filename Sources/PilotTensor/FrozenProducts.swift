/// Products against a frozen weight W [O, I] (`FrozenMatrix`, Hugging Face [out, in] layout):
///
///     forward    y[N, O]  = x[N, I]·Wᵀ (+ y)
///     backward   dx[N, I] = dy[N, O]·W (+ dx)
///
/// An f32 weight is multiplied in place with one sgemm each, exactly as the engine did before it had
/// dtypes (the same bits). A bf16 or q8 weight is decoded a tile of rows at a time into a Float32
/// scratch buffer, each tile followed by its sgemm: the forward writes a block of y's columns per
/// tile, the backward adds each tile's share of dx in tile order. Tiles depend only on the shape, so
/// the results are reproducible; the decoding costs O·I per product against the product's 2·N·O·I
/// flops.
public final class FrozenProducts: @unchecked Sendable {
    /// Float32 values of one tile at most (8 MiB): big enough for OpenBLAS to run near its peak.
    public static let tileValues = 1 << 21
    private var scratch: UnsafeMutablePointer<Float>
    private var capacity: Int

    public init() {
        capacity = 0
        scratch = .allocate(capacity: 1)
    }

    deinit { scratch.deallocate() }

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

    /// Decodes `w` a tile of rows at a time, in row order, and hands each tile (rows lo..<hi as Float32) to `body`.
    private func forEachTile(of w: FrozenMatrix, _ body: (_ lo: Int, _ hi: Int, _ tile: UnsafeMutablePointer<Float>) -> Void) {
        let t = Self.tileRows(cols: w.cols, rows: w.rows)
        var lo = 0
        while lo < w.rows {
            let hi = min(w.rows, lo + t)
            body(lo, hi, decode(w, lo, hi))
            lo = hi
        }
    }

    /// y[N, O] = x[N, I]·Wᵀ (+ y when `accumulate`); y has leading dimension `ldy` (default O).
    public func forward(y: UnsafeMutablePointer<Float>, ldy: Int? = nil, x: UnsafePointer<Float>, rows n: Int,
                        weight w: FrozenMatrix, accumulate: Bool = false) {
        let ldy = ldy ?? w.rows
        if let f = w.float32 {
            sgemm(transB: true, m: n, n: w.rows, k: w.cols, a: x, b: f, ldb: w.cols, beta: accumulate ? 1 : 0, c: y, ldc: ldy)
            return
        }
        forEachTile(of: w) { lo, hi, tile in
            sgemm(transB: true, m: n, n: hi - lo, k: w.cols, a: x, b: tile, ldb: w.cols, beta: accumulate ? 1 : 0, c: y + lo, ldc: ldy)
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
        forEachTile(of: w) { lo, hi, tile in
            sgemm(m: n, n: w.cols, k: hi - lo, a: dy + lo, lda: ldy, b: tile, ldb: w.cols,
                  beta: (accumulate || lo > 0) ? 1 : 0, c: dx, ldc: w.cols)
        }
    }
}
