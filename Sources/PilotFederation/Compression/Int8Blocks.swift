/// `UpdateCodec.int8`: blockwise absmax quantisation, as NVFlare's and bitsandbytes' blockwise 8-bit.
/// The values are cut into blocks of 64 (the last may be shorter); a block's scale is s = absmax/127,
/// each value is stored as q = round(x/s) (ties to even) in −127…127, and decodes as q·s, so
/// |x − q·s| ≤ s/2 = absmax/254. Layout: every block's Float32 scale, then every code (n bytes).
/// A block with a non-finite value gets a NaN scale and decodes as NaN (the server rejects it).
enum Int8Blocks {
    static func encode(_ x: [Float], into out: inout ByteWriter) {
        let b = UpdateCodec.int8Block
        var scales: [Float] = []
        scales.reserveCapacity((x.count + b - 1) / b)
        for start in stride(from: 0, to: x.count, by: b) {
            var absmax: Float = 0, finite = true
            for v in x[start..<min(start + b, x.count)] {
                if !v.isFinite { finite = false }
                absmax = max(absmax, abs(v))
            }
            scales.append(finite ? absmax / 127 : .nan)
        }
        for s in scales { out.put(s) }
        for (i, v) in x.enumerated() {
            let s = scales[i / b]
            let q: Float = s.isFinite && s > 0 ? min(max((v / s).rounded(.toNearestOrEven), -127), 127) : 0
            out.put(UInt8(bitPattern: Int8(q)))
        }
    }

    static func decode(_ r: inout ByteReader, count n: Int) -> [Float] {
        let b = UpdateCodec.int8Block
        let scales = (0..<((n + b - 1) / b)).map { _ in r.float() }
        return (0..<n).map { i in Float(Int8(bitPattern: r.uint8())) * scales[i / b] }
    }
}
