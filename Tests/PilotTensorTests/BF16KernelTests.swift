import PilotTensor
import PilotTestSupport
import Testing

/// The bf16 kernel (oneDNN's matmul behind `FrozenProducts` for bf16 weights). The product tests run
/// only where oneDNN finds AVX512_BF16 or AMX; the conversion and fallback tests run everywhere.
@Suite("bf16 kernel for frozen products")
struct BF16KernelTests {
    /// The rounding as first written (a branch for NaN): the vectorisable `FrozenEncoding.bf16` must agree.
    static func bf16Reference(_ x: Float) -> UInt16 {
        let bits = x.bitPattern
        if x.isNaN { return UInt16(truncatingIfNeeded: (bits >> 16) | 0x40) }
        return UInt16(truncatingIfNeeded: (bits &+ 0x7fff &+ ((bits >> 16) & 1)) >> 16)
    }

    @Test("activations to bf16: bf16Rows equals the scalar rounding (ties, NaN, infinities, subnormals) and honours the leading dimension")
    func conversion() {
        var rng = SplitMix(seed: 11)
        var values: [Float] = [0, -0.0, 1, .infinity, -.infinity, .nan, -.nan, Float(bitPattern: 0x7f80_0001), Float(bitPattern: 0xffc0_1234),
                               Float(bitPattern: 0x3f80_8000), Float(bitPattern: 0x3f81_8000), Float(bitPattern: 0x3f80_7fff),
                               Float(bitPattern: 0x7f7f_ffff), Float(bitPattern: 0x0000_8000), Float(bitPattern: 0x8001_8000), .leastNormalMagnitude]
        while values.count < 3 * 40 { values.append(Float(bitPattern: UInt32(truncatingIfNeeded: rng.next()))) }
        // 3 rows of 37 values, read with a leading dimension of 40
        var out = [UInt16](repeating: 0xdead, count: 3 * 37)
        values.withUnsafeBufferPointer { FrozenEncoding.bf16Rows($0.baseAddress!, ldx: 40, rows: 3, cols: 37, into: &out) }
        for r in 0..<3 {
            for j in 0..<37 {
                let x = values[r * 40 + j]
                #expect(out[r * 37 + j] == Self.bf16Reference(x), "value \(String(x.bitPattern, radix: 16))")
                #expect(FrozenEncoding.bf16(x) == Self.bf16Reference(x))
            }
        }
    }

    /// A seeded bf16 weight [rows, cols] (its bytes and its values as Float32) and Float32 activations.
    static func data(rows: Int, cols: Int, n: Int, seed: UInt64) -> (w: [UInt8], wf: [Float], x: [Float], dy: [Float], y0: [Float], dx0: [Float]) {
        let (bytes, wf) = FrozenMatrixTests.weight(.bf16, rows: rows, cols: cols, seed: seed)
        var rng = SplitMix(seed: seed &+ 1)
        let x = (0..<(n * cols)).map { _ in rng.nextFloat() - 0.5 }
        let dy = (0..<(n * rows)).map { _ in rng.nextFloat() - 0.5 }
        let y0 = (0..<(n * rows)).map { _ in rng.nextFloat() - 0.5 }
        let dx0 = (0..<(n * cols)).map { _ in rng.nextFloat() - 0.5 }
        return (bytes, wf, x, dy, y0, dx0)
    }

    /// Checks `got` against (bf16-rounded a)·b computed by sgemm in Float32 (plus `c0` when given).
    /// Both are the exact sum of the same exactly representable products (a bf16 times a bf16 fits
    /// in a Float32), each rounded along its own order of summation: by the standard bound each is
    /// within γ_K·Σ|aᵢbᵢ| of the exact sum, γ_K = K·u/(1 − K·u), u = 2⁻²⁴, and one more rounding
    /// for the added c0. So they differ by at most 2·γ_(K+1)·(Σ|aᵢbᵢ| + |c0|) per element.
    /// Rounding a to bf16 by truncation instead, or a misread layout, breaks this by orders of magnitude.
    @discardableResult
    static func expectClose(_ got: [Float], a: [Float], b: [Float], c0: [Float]?, m: Int, n: Int, k: Int, transB: Bool,
                            _ what: String) -> Double {
        let ar = a.map { Float(bitPattern: UInt32(FrozenEncoding.bf16($0)) << 16) }
        var ref = c0 ?? [Float](repeating: 0, count: m * n)
        var mag = c0.map { $0.map(abs) } ?? ref
        ar.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in ref.withUnsafeMutableBufferPointer { pc in
            sgemm(transB: transB, m: m, n: n, k: k, a: pa.baseAddress!, b: pb.baseAddress!, beta: c0 == nil ? 0 : 1, c: pc.baseAddress!)
        } } }
        let absA = ar.map(abs), absB = b.map(abs)
        absA.withUnsafeBufferPointer { pa in absB.withUnsafeBufferPointer { pb in mag.withUnsafeMutableBufferPointer { pc in
            sgemm(transB: transB, m: m, n: n, k: k, a: pa.baseAddress!, b: pb.baseAddress!, beta: c0 == nil ? 0 : 1, c: pc.baseAddress!)
        } } }
        let u = 1.0 / 16_777_216.0, kk = Double(k + 1)
        let gamma = kk * u / (1 - kk * u)
        var worst = 0.0, bad = 0
        for i in 0..<(m * n) {
            let d = abs(Double(got[i]) - Double(ref[i]))
            let bound = 2 * gamma * Double(mag[i]) * 1.001   // 1.001: the Float32 sum of magnitudes is itself rounded
            worst = max(worst, d / max(bound, .leastNormalMagnitude))
            if d > bound { bad += 1 }
        }
        #expect(bad == 0, "\(what): \(bad) of \(m * n) values outside 2·γ_(K+1)·Σ|ab|; worst at \(worst)× the bound")
        return worst
    }

    struct Shape: Sendable, CustomStringConvertible {
        let rows: Int, cols: Int, n: Int
        var description: String { "W [\(rows), \(cols)], \(n) rows" }
    }

    /// One step shape scaled down (fits a split at 2 threads by rows), a few-rows product split by
    /// columns at 2 threads, a single row (generation), and an odd shape.
    static let shapes = [Shape(rows: 320, cols: 192, n: 128), Shape(rows: 4096, cols: 256, n: 8), Shape(rows: 960, cols: 576, n: 1),
                         Shape(rows: 77, cols: 45, n: 19)]

    @Test("kernel products equal (bf16 x)·(bf16 W) in f32 within the summation bound, forward and backward, with and without accumulation; the same bits on a second call, at 1 and at 2 threads",
          .enabled(if: BF16Kernel.cpuHasBF16), arguments: shapes)
    func kernelProducts(shape: Shape) {
        engineThreadsLock.lock(); defer { engineThreadsLock.unlock(); Parallel.configure(threads: 1) }
        let (rows, cols, n) = (shape.rows, shape.cols, shape.n)
        let d = Self.data(rows: rows, cols: cols, n: n, seed: UInt64(rows * 31 + cols))
        var bits: [Int: [Float]] = [:]
        for threads in [1, 2] {
            Parallel.configure(threads: threads)
            let products = FrozenProducts(bf16Kernel: true)
            #expect(products.usesBF16Kernel)
            var runs: [[Float]] = []
            for _ in 0..<2 {
                var y = [Float](repeating: 0, count: n * rows), dx = [Float](repeating: 0, count: n * cols)
                var yAcc = d.y0, dxAcc = d.dx0
                d.w.withUnsafeBytes { raw in
                    let m = FrozenMatrix(dtype: .bf16, rows: rows, cols: cols, raw: raw.baseAddress!)
                    products.forward(y: &y, x: d.x, rows: n, weight: m)
                    products.backward(dx: &dx, dy: d.dy, rows: n, weight: m)
                    products.forward(y: &yAcc, x: d.x, rows: n, weight: m, accumulate: true)
                    products.backward(dx: &dxAcc, dy: d.dy, rows: n, weight: m, accumulate: true)
                }
                runs.append(y + dx + yAcc + dxAcc)
                if runs.count == 1 {
                    let what = "\(shape), \(threads) thread(s)"
                    let worst = Self.expectClose(y, a: d.x, b: d.wf, c0: nil, m: n, n: rows, k: cols, transB: true, "forward, " + what)
                    print("BF16KernelTests: \(what): forward's largest difference is \(worst)× the bound")
                    Self.expectClose(dx, a: d.dy, b: d.wf, c0: nil, m: n, n: cols, k: rows, transB: false, "backward, " + what)
                    Self.expectClose(yAcc, a: d.x, b: d.wf, c0: d.y0, m: n, n: rows, k: cols, transB: true, "forward +y, " + what)
                    Self.expectClose(dxAcc, a: d.dy, b: d.wf, c0: d.dx0, m: n, n: cols, k: rows, transB: false, "backward +dx, " + what)
                }
            }
            #expect(runs[0].map(\.bitPattern) == runs[1].map(\.bitPattern), "\(shape): the same bits on a second call at \(threads) thread(s)")
            bits[threads] = runs[0]
        }
        // Not a requirement (the engine promises bits per thread count), but worth knowing: oneDNN's
        // blocks sum each output in an order that does not depend on how C is split.
        print("BF16KernelTests: \(shape): 1 and 2 threads give the same bits: \(bits[1]!.map(\.bitPattern) == bits[2]!.map(\.bitPattern))")
    }

    @Test("leading dimensions: y written into a wider matrix, dy read from one; the rest of the row untouched",
          .enabled(if: BF16Kernel.cpuHasBF16))
    func leadingDimensions() {
        let (rows, cols, n, ld) = (96, 64, 40, 150)
        let d = Self.data(rows: rows, cols: cols, n: n, seed: 5)
        var wide = [Float](repeating: 7, count: n * ld)
        var dyWide = [Float](repeating: .nan, count: n * ld)
        for r in 0..<n { for j in 0..<rows { dyWide[r * ld + j] = d.dy[r * rows + j] } }
        var dx = [Float](repeating: 0, count: n * cols)
        let products = FrozenProducts(bf16Kernel: true)
        d.w.withUnsafeBytes { raw in
            let m = FrozenMatrix(dtype: .bf16, rows: rows, cols: cols, raw: raw.baseAddress!)
            products.forward(y: &wide, ldy: ld, x: d.x, rows: n, weight: m)
            products.backward(dx: &dx, dy: dyWide, ldy: ld, rows: n, weight: m)
        }
        let y = (0..<n).flatMap { r in wide[(r * ld)..<(r * ld + rows)] }
        #expect((0..<n).allSatisfy { r in wide[(r * ld + rows)..<(r * ld + ld)].allSatisfy { $0 == 7 } }, "columns past O untouched")
        Self.expectClose(y, a: d.x, b: d.wf, c0: nil, m: n, n: rows, k: cols, transB: true, "forward, ldy \(ld)")
        Self.expectClose(dx, a: d.dy, b: d.wf, c0: nil, m: n, n: cols, k: rows, transB: false, "backward, ldy \(ld)")
    }

    @Test("f32 weights stay the plain sgemm bit for bit with the kernel on; bf16 with it off is the decode+sgemm path")
    func f32AndFallback() {
        engineThreadsLock.lock(); defer { engineThreadsLock.unlock() }
        let (rows, cols, n) = (200, 96, 33)
        var rng = SplitMix(seed: 3)
        let w = (0..<(rows * cols)).map { _ in rng.nextFloat() - 0.5 }
        let x = (0..<(n * cols)).map { _ in rng.nextFloat() - 0.5 }
        var yRef = [Float](repeating: 0, count: n * rows), y = yRef
        x.withUnsafeBufferPointer { px in w.withUnsafeBufferPointer { pw in yRef.withUnsafeMutableBufferPointer { pc in
            sgemm(transB: true, m: n, n: rows, k: cols, a: px.baseAddress!, b: pw.baseAddress!, c: pc.baseAddress!)
        } } }
        let on = FrozenProducts(bf16Kernel: true), off = FrozenProducts(bf16Kernel: false)
        #expect(!off.usesBF16Kernel)
        w.withUnsafeBufferPointer { pw in
            on.forward(y: &y, x: x, rows: n, weight: FrozenMatrix(rows: rows, cols: cols, float32: pw.baseAddress!))
        }
        #expect(y.map(\.bitPattern) == yRef.map(\.bitPattern))

        // bf16 with the kernel off: sgemm on the decoded weight, x not rounded (one tile here, so one sgemm)
        let d = Self.data(rows: rows, cols: cols, n: n, seed: 9)
        var yDecoded = [Float](repeating: 0, count: n * rows), yOff = yDecoded
        d.x.withUnsafeBufferPointer { px in d.wf.withUnsafeBufferPointer { pw in yDecoded.withUnsafeMutableBufferPointer { pc in
            sgemm(transB: true, m: n, n: rows, k: cols, a: px.baseAddress!, b: pw.baseAddress!, c: pc.baseAddress!)
        } } }
        d.w.withUnsafeBytes { raw in off.forward(y: &yOff, x: d.x, rows: n, weight: FrozenMatrix(dtype: .bf16, rows: rows, cols: cols, raw: raw.baseAddress!)) }
        #expect(yOff.map(\.bitPattern) == yDecoded.map(\.bitPattern))
    }

    @Test("q8 weights on the kernel: the bf16 kernel on the bf16 rounding of q·d, bit for bit in one tile and within the summation bound over several; off, the exact decode+sgemm",
          .enabled(if: BF16Kernel.cpuHasBF16))
    func q8OnKernel() {
        engineThreadsLock.lock(); defer { engineThreadsLock.unlock() }
        // 200 × 96 is one tile; 600 × 4096 is two (2²¹ values per tile), the second a short one
        for (rows, cols, n) in [(200, 96, 33), (600, 4096, 5)] {
            let (q8, decoded) = FrozenMatrixTests.weight(.q8, rows: rows, cols: cols, seed: UInt64(rows + cols))
            let rounded = decoded.map { FrozenEncoding.bf16($0) }
            let roundedValues = rounded.map { Float(bitPattern: UInt32($0) << 16) }
            let d = Self.data(rows: rows, cols: cols, n: n, seed: 5)
            let on = FrozenProducts(bf16Kernel: true), off = FrozenProducts(bf16Kernel: false)
            var yQ = [Float](repeating: 0, count: n * rows), dxQ = [Float](repeating: 0, count: n * cols)
            var yB = yQ, dxB = dxQ, yOff = yQ
            q8.withUnsafeBytes { raw in
                let m = FrozenMatrix(dtype: .q8, rows: rows, cols: cols, raw: raw.baseAddress!)
                on.forward(y: &yQ, x: d.x, rows: n, weight: m)
                on.backward(dx: &dxQ, dy: d.dy, rows: n, weight: m)
                off.forward(y: &yOff, x: d.x, rows: n, weight: m)
            }
            rounded.withUnsafeBytes { raw in
                let m = FrozenMatrix(dtype: .bf16, rows: rows, cols: cols, raw: raw.baseAddress!)
                on.forward(y: &yB, x: d.x, rows: n, weight: m)
                on.backward(dx: &dxB, dy: d.dy, rows: n, weight: m)
            }
            let what = "q8 W [\(rows), \(cols)], \(n) rows"
            if FrozenProducts.tileRows(cols: cols, rows: rows) >= rows {
                #expect(yQ.map(\.bitPattern) == yB.map(\.bitPattern), "\(what): forward")
                #expect(dxQ.map(\.bitPattern) == dxB.map(\.bitPattern), "\(what): backward")
            } else {
                Self.expectClose(yQ, a: d.x, b: roundedValues, c0: nil, m: n, n: rows, k: cols, transB: true, "\(what): forward")
                Self.expectClose(dxQ, a: d.dy, b: roundedValues, c0: nil, m: n, n: cols, k: rows, transB: false, "\(what): backward")
                #expect(yQ.map(\.bitPattern) != yOff.map(\.bitPattern), "\(what): the kernel path is not the decode path")
            }
            // with the kernel off: sgemm on the exact q·d, x not rounded
            var yExact = [Float](repeating: 0, count: n * rows)
            d.x.withUnsafeBufferPointer { px in decoded.withUnsafeBufferPointer { pw in yExact.withUnsafeMutableBufferPointer { pc in
                sgemm(transB: true, m: n, n: rows, k: cols, a: px.baseAddress!, b: pw.baseAddress!, c: pc.baseAddress!)
            } } }
            if FrozenProducts.tileRows(cols: cols, rows: rows) >= rows {
                #expect(yOff.map(\.bitPattern) == yExact.map(\.bitPattern), "\(what): kernel off")
            }
        }
    }

    @Test("the report names the path a bf16 base takes")
    func summary() {
        let s = BF16Kernel.summary
        #expect(s.hasPrefix("bf16 and q8 products: "))
        if BF16Kernel.isUsable { #expect(s.contains("oneDNN") && BF16Kernel.implementation != nil, "\(s)") } else { #expect(s.contains("decode")) }
    }
}
