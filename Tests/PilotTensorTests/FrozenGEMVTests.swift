import PilotCore
import PilotTensor
import PilotTestSupport
import Testing

/// `FrozenMatrix.gemv` against its definition, bit for bit: each row decoded to Float32 (`decodeRow`),
/// then 64 lanes of fused multiply-adds (lane l takes the elements k ≡ l mod 64, in increasing k, from +0)
/// and the pairwise tree acc[l] += acc[l + h] for h = 32 ... 1. Every kernel level this CPU runs, at 1
/// and 2 threads, must give exactly these bits; a plain Double dot product checks that the definition
/// is a dot product.
@Suite("one-row products over frozen weights (gemv)", .serialized)
struct FrozenGEMVTests {
    /// The reference dot product of `w` and `x` (the order of pilot_kernels.h).
    static func referenceDot(_ w: [Float], _ x: [Float]) -> Float {
        var acc = [Float](repeating: 0, count: 64)
        for k in w.indices { acc[k % 64] = acc[k % 64].addingProduct(w[k], x[k]) }
        var h = 32
        while h >= 1 {
            for l in 0..<h { acc[l] += acc[l + h] }
            h /= 2
        }
        return acc[0]
    }

    /// How many entries of `a` and `b` differ in any bit.
    static func differing(_ a: [Float], _ b: [Float]) -> Int { zip(a, b).filter { $0.bitPattern != $1.bitPattern }.count }

    /// A [rows, cols] matrix in `dtype` (values of mixed sign and size, some zeros), and its bytes.
    static func matrix(rows: Int, cols: Int, dtype: BaseDType, seed: UInt64) -> [UInt8] {
        var rng = SplitMix64(seed: seed)
        var values = [Float](repeating: 0, count: rows * cols)
        for i in values.indices {
            let u = Float(rng.next() >> 40) / Float(1 << 24) - 0.5
            values[i] = i % 17 == 3 ? 0 : u * (i % 5 == 0 ? 40 : 1)
        }
        var bytes = [UInt8](repeating: 0, count: dtype.bytes(rows: rows, cols: cols))
        values.withUnsafeBufferPointer { src in
            bytes.withUnsafeMutableBytes { out in
                for r in 0..<rows {
                    FrozenEncoding.encode(UnsafeBufferPointer(rebasing: src[(r * cols)..<((r + 1) * cols)]), as: dtype,
                                          into: out.baseAddress! + r * dtype.bytes(rows: 1, cols: cols))
                }
            }
        }
        return bytes
    }

    static func vector(_ n: Int, seed: UInt64) -> [Float] {
        var rng = SplitMix64(seed: seed)
        return (0..<n).map { _ in Float(rng.next() >> 40) / Float(1 << 23) - 1 }
    }

    /// (rows, cols): whole 64-lane steps, an odd number of q8 blocks, rows split unevenly over threads,
    /// (f32/bf16 only) lengths with a tail shorter than 64, and rows longer than the bf16 kernels reorder
    /// x for on the stack (8192).
    static let shapes = [(1, 64), (5, 32), (67, 96), (130, 576), (9, 1536), (3, 7), (33, 100), (4, 1000), (2, 8256), (3, 8200)]

    @Test("bitwise the reference order on every kernel level, at 1 and 2 threads, with and without accumulate",
          arguments: BaseDType.allCases)
    func matchesReference(dtype: BaseDType) {
        engineThreadsLock.lock(); defer { engineThreadsLock.unlock() }
        defer { Parallel.configure(threads: 1) }
        var checked = 0
        for (si, (rows, cols)) in Self.shapes.enumerated() where dtype.fits(cols: cols) {
            let bytes = Self.matrix(rows: rows, cols: cols, dtype: dtype, seed: UInt64(si))
            let x = Self.vector(cols, seed: 100 + UInt64(si)), y0 = Self.vector(rows, seed: 200 + UInt64(si))
            bytes.withUnsafeBytes { raw in
                let w = FrozenMatrix(dtype: dtype, rows: rows, cols: cols, raw: raw.baseAddress!)
                var expected = [Float](repeating: 0, count: rows), row = [Float](repeating: 0, count: cols)
                for r in 0..<rows {
                    row.withUnsafeMutableBufferPointer { w.decodeRow(r, into: $0.baseAddress!) }
                    expected[r] = Self.referenceDot(row, x)
                    // the reference is a dot product: within Float32 rounding of Σ|w·x| of the exact sum
                    let exact = zip(row, x).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
                    let magnitude = zip(row, x).reduce(0.0) { $0 + abs(Double($1.0) * Double($1.1)) }
                    #expect(abs(Double(expected[r]) - exact) <= 1e-6 * magnitude * Double(cols).squareRoot())
                }
                for kernel in GEMVKernel.available {
                    for threads in [1, 2] {
                        Parallel.configure(threads: threads)
                        var y = [Float](repeating: .nan, count: rows)
                        y.withUnsafeMutableBufferPointer { w.gemv(x: x, y: $0.baseAddress!, kernel: kernel) }
                        #expect(Self.differing(y, expected) == 0,
                                "\(dtype) [\(rows), \(cols)] \(kernel) \(threads) threads: max diff \(maxAbsDiff(y, expected))")
                        var acc = y0
                        acc.withUnsafeMutableBufferPointer { w.gemv(x: x, y: $0.baseAddress!, accumulate: true, kernel: kernel) }
                        #expect(Self.differing(acc, zip(y0, expected).map { $0 + $1 }) == 0,
                                "\(dtype) [\(rows), \(cols)] \(kernel) \(threads) threads, accumulate")
                        checked += 1
                    }
                }
            }
        }
        print("gemv \(dtype): \(checked) (shape, kernel, threads) cases bitwise equal to the reference; kernels here: \(GEMVKernel.available)")
        #expect(checked > 0)
    }

    @Test("q8 scales: f16 subnormals, zero and the largest half decode as decodeRows does")
    func q8Scales() {
        engineThreadsLock.lock(); defer { engineThreadsLock.unlock() }
        let scales: [UInt16] = [0x0001, 0x03ff, 0x0000, 0x8000, 0x7bff, 0x3c00, 0xbc00, 0x1234]
        var bytes = [UInt8](repeating: 0, count: 34 * scales.count)
        for (b, d) in scales.enumerated() {
            bytes[34 * b] = UInt8(d & 0xff); bytes[34 * b + 1] = UInt8(d >> 8)
            for j in 0..<32 { bytes[34 * b + 2 + j] = UInt8(bitPattern: Int8(truncatingIfNeeded: j * 9 - 128)) }
        }
        let x = Self.vector(32 * scales.count, seed: 7)
        bytes.withUnsafeBytes { raw in
            // one row per block, and all blocks in one row
            for (rows, cols) in [(scales.count, 32), (1, 32 * scales.count)] {
                let w = FrozenMatrix(dtype: .q8, rows: rows, cols: cols, raw: raw.baseAddress!)
                var expected = [Float](repeating: 0, count: rows), row = [Float](repeating: 0, count: cols)
                for r in 0..<rows {
                    row.withUnsafeMutableBufferPointer { w.decodeRow(r, into: $0.baseAddress!) }
                    expected[r] = Self.referenceDot(row, Array(x[0..<cols]))
                }
                for kernel in GEMVKernel.available {
                    var y = [Float](repeating: .nan, count: rows)
                    y.withUnsafeMutableBufferPointer { w.gemv(x: x, y: $0.baseAddress!, kernel: kernel) }
                    #expect(Self.differing(y, expected) == 0, "q8 scales, \(rows) rows, \(kernel)")
                }
            }
        }
    }
}
