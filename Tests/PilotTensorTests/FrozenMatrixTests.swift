import PilotCore
import PilotTensor
import PilotTestSupport
import Testing

@Suite("frozen weights in f32, bf16 and q8")
struct FrozenMatrixTests {
    @Test("bf16: round to nearest even, as torch's .to(torch.bfloat16); NaN stays NaN")
    func bf16Rounding() {
        #expect(FrozenEncoding.bf16(1) == 0x3f80)
        #expect(FrozenEncoding.bf16(Float(bitPattern: 0x3f80_8000)) == 0x3f80)   // a tie to the even 0x3f80
        #expect(FrozenEncoding.bf16(Float(bitPattern: 0x3f81_8000)) == 0x3f82)   // a tie to the even 0x3f82
        #expect(FrozenEncoding.bf16(Float(bitPattern: 0x3f80_8001)) == 0x3f81)   // above the tie
        #expect(FrozenEncoding.bf16(-0.0) == 0x8000)
        #expect(FrozenEncoding.bf16(.infinity) == 0x7f80)
        #expect(FrozenEncoding.bf16(Float(bitPattern: 0x7f7f_ffff)) == 0x7f80)   // the largest float rounds to infinity
        let nan = Float(bitPattern: UInt32(FrozenEncoding.bf16(.nan)) << 16)
        #expect(nan.isNaN)
    }

    @Test("decoding bf16 and q8 rows gives exactly each value's bits (bf16: the top half of a float; q8: q·d), NaNs and odd lengths included")
    func vectorDecodeIsScalarDecode() {
        var rng = SplitMix64(seed: 11)
        let halves = (0..<(37 * 3)).map { _ in UInt16(truncatingIfNeeded: rng.next()) }   // every pattern: NaNs, subnormals
        var out = [Float](repeating: 0, count: halves.count)
        halves.withUnsafeBytes { raw in
            out.withUnsafeMutableBufferPointer { FrozenMatrix(dtype: .bf16, rows: 3, cols: 37, raw: raw.baseAddress!).decodeRows(0, 3, into: $0.baseAddress!) }
        }
        #expect(out.map(\.bitPattern) == halves.map { UInt32($0) << 16 })
        var blocks = [UInt8]()
        for _ in 0..<(2 * 3) {   // 2 rows of 96 values: 3 blocks each
            let d = HalfFloat.bits(Float(rng.next() % 1000) * 1e-5)
            blocks += [UInt8(d & 0xff), UInt8(d >> 8)] + (0..<32).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        }
        var q8 = [Float](repeating: 0, count: 2 * 96)
        blocks.withUnsafeBytes { raw in
            q8.withUnsafeMutableBufferPointer { FrozenMatrix(dtype: .q8, rows: 2, cols: 96, raw: raw.baseAddress!).decodeRows(0, 2, into: $0.baseAddress!) }
        }
        let scalar = (0..<(2 * 96)).map { i -> Float in
            let b = i / 32, d = HalfFloat.float(UInt16(blocks[34 * b]) | UInt16(blocks[34 * b + 1]) << 8)
            return Float(Int8(bitPattern: blocks[34 * b + 2 + i % 32])) * d
        }
        #expect(q8.map(\.bitPattern) == scalar.map(\.bitPattern))
    }

    @Test("f16: every finite half converts to float and back to the same bits; rounding ties go to even")
    func halfRoundTrip() {
        for h in 0...0xffff {
            let f = HalfFloat.float(UInt16(h))
            if f.isNaN { continue }
            #expect(HalfFloat.bits(f) == UInt16(h), "half \(h)")
        }
        #expect(HalfFloat.bits(1 + 1.0 / 2048) == 0x3c00)        // the tie between 1 and 1 + 2⁻¹⁰ goes to 1
        #expect(HalfFloat.bits(1 + 3.0 / 2048) == 0x3c02)        // and this one to 1 + 2·2⁻¹⁰
        #expect(HalfFloat.bits(70000) == 0x7c00)                 // overflow
        #expect(HalfFloat.bits(Float(bitPattern: 0x3300_0000)) == 0)   // 2⁻²⁵, half the least subnormal: a tie to 0
        #expect(HalfFloat.bits(Float(bitPattern: 0x3300_0001)) == 1)
    }

    @Test("q8: Q8_0 blocks as ggml computes them: d = max|w|/127 stored as f16, q = round half away from zero")
    func q8Blocks() {
        var v = [Float](repeating: 0, count: 64)
        for j in 0..<32 { v[j] = Float(j - 16) / 8 }          // max |w| = 2
        v[32 + 5] = -0.75                                      // one value: q = −127
        var block = [UInt8](repeating: 0, count: 68)
        v.withUnsafeBufferPointer { src in block.withUnsafeMutableBytes { FrozenEncoding.q8(src, into: $0.baseAddress!) } }
        let d0 = UInt16(block[0]) | UInt16(block[1]) << 8
        #expect(d0 == HalfFloat.bits(2.0 / 127))
        // w = −16/8 = −2 → −127; w = 1/8 → 0.125·63.5 = 7.9375 → 8
        #expect(Int8(bitPattern: block[2]) == -127)
        #expect(Int8(bitPattern: block[2 + 17]) == 8)
        #expect(Int8(bitPattern: block[34 + 2 + 5]) == -127)
        #expect(block[34 + 2] == 0)
        // decoding gives q·d, within d/2 of every value
        let m = block.withUnsafeBytes { FrozenMatrix(dtype: .q8, rows: 2, cols: 32, raw: $0.baseAddress!) }
        var out = [Float](repeating: 0, count: 64)
        block.withUnsafeBytes { raw in
            let m = FrozenMatrix(dtype: .q8, rows: 2, cols: 32, raw: raw.baseAddress!)
            out.withUnsafeMutableBufferPointer { m.decodeRows(0, 2, into: $0.baseAddress!) }
        }
        _ = m
        let d = HalfFloat.float(d0)
        for j in 0..<32 { #expect(abs(out[j] - v[j]) <= d / 2 + 1e-6, "value \(j)") }
        #expect(out[32 + 5] == -127 * HalfFloat.float(HalfFloat.bits(0.75 / 127)))
    }

    /// W [O, I] in `dtype`, encoded from seeded values, and its decoded Float32 values.
    static func weight(_ dtype: BaseDType, rows: Int, cols: Int, seed: UInt64) -> (bytes: [UInt8], decoded: [Float]) {
        var rng = SplitMix(seed: seed)
        let w = (0..<(rows * cols)).map { _ in rng.nextFloat() - 0.5 }
        var bytes = [UInt8](repeating: 0, count: dtype.bytes(rows: rows, cols: cols))
        w.withUnsafeBufferPointer { src in bytes.withUnsafeMutableBytes { FrozenEncoding.encode(src, as: dtype, into: $0.baseAddress!) } }
        var decoded = [Float](repeating: 0, count: rows * cols)
        bytes.withUnsafeBytes { raw in
            decoded.withUnsafeMutableBufferPointer { FrozenMatrix(dtype: dtype, rows: rows, cols: cols, raw: raw.baseAddress!).decodeRows(0, rows, into: $0.baseAddress!) }
        }
        return (bytes, decoded)
    }

    @Test("products: y = x·Wᵀ and dx = dy·W over decoded tiles equal sgemm on the decoded weight; f32 is that sgemm bit for bit",
          arguments: [BaseDType.f32, .bf16, .q8])
    func products(dtype: BaseDType) {
        engineThreadsLock.lock(); defer { engineThreadsLock.unlock() }
        // 40 000 × 64 weights are more than one tile (2²¹ values), so the tiling is exercised
        for (rows, cols) in [(96, 64), (40_000, 64)] {
            let n = 5
            let (bytes, w) = Self.weight(dtype, rows: rows, cols: cols, seed: UInt64(rows + cols))
            var rng = SplitMix(seed: 7)
            let x = (0..<(n * cols)).map { _ in rng.nextFloat() - 0.5 }
            let dy = (0..<(n * rows)).map { _ in rng.nextFloat() - 0.5 }
            var yRef = [Float](repeating: 0, count: n * rows), dxRef = [Float](repeating: 0, count: n * cols)
            sgemm(transB: true, m: n, n: rows, k: cols, a: x, b: w, c: &yRef)
            sgemm(m: n, n: cols, k: rows, a: dy, b: w, c: &dxRef)
            var y = [Float](repeating: 0, count: n * rows), dx = [Float](repeating: 0, count: n * cols)
            var y2 = y, dx2 = dx
            let products = FrozenProducts(bf16Kernel: false)   // the decode+sgemm path (BF16KernelTests has the kernel)
            bytes.withUnsafeBytes { raw in
                let m = FrozenMatrix(dtype: dtype, rows: rows, cols: cols, raw: raw.baseAddress!)
                products.forward(y: &y, x: x, rows: n, weight: m)
                products.backward(dx: &dx, dy: dy, rows: n, weight: m)
                products.forward(y: &y2, x: x, rows: n, weight: m)
                products.backward(dx: &dx2, dy: dy, rows: n, weight: m)
            }
            #expect(y == y2 && dx == dx2, "the same bits on a second call")
            if dtype == .f32 {
                #expect(y.map(\.bitPattern) == yRef.map(\.bitPattern))
                #expect(dx.map(\.bitPattern) == dxRef.map(\.bitPattern))
            } else {
                let ey = zip(y, yRef).map { abs($0 - $1) }.max()!, ex = zip(dx, dxRef).map { abs($0 - $1) }.max()!
                #expect(ey <= 1e-4 && ex <= 1e-3 * Float(rows).squareRoot(), "\(rows)×\(cols): max |Δy| \(ey), |Δdx| \(ex)")
            }
        }
    }
}

private func sgemm(transB: Bool = false, m: Int, n: Int, k: Int, a: [Float], b: [Float], c: inout [Float]) {
    a.withUnsafeBufferPointer { pa in
        b.withUnsafeBufferPointer { pb in
            c.withUnsafeMutableBufferPointer { pc in
                PilotTensor.sgemm(transB: transB, m: m, n: n, k: k, a: pa.baseAddress!, b: pb.baseAddress!, c: pc.baseAddress!)
            }
        }
    }
}
