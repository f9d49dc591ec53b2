import PilotCore

/// The element type of a frozen base's weights (`[model] base_dtype`). Everything trainable, the
/// optimizer and every gradient stay Float32 whatever it is.
public enum BaseDType: String, Sendable, CaseIterable, Codable {
    /// 4 bytes a weight: the products read the weights in place (bit for bit the engine without dtypes).
    case f32
    /// 2 bytes: bfloat16, the top half of a Float32 rounded to nearest even.
    case bf16
    /// 34 bytes per 32 weights: GGUF's Q8_0 blocks along each row (an f16 scale d = max|w|/127 and 32
    /// int8 q; w = q·d).
    case q8

    /// Bytes of a [rows, cols] matrix.
    public func bytes(rows: Int, cols: Int) -> Int {
        switch self {
        case .f32: return 4 * rows * cols
        case .bf16: return 2 * rows * cols
        case .q8: return rows * (cols / 32) * 34
        }
    }

    /// Whether a row of `cols` values can be stored (q8's blocks need a multiple of 32).
    public func fits(cols: Int) -> Bool { self != .q8 || cols % 32 == 0 }
}

/// A frozen [rows, cols] row-major matrix (a Hugging Face [out, in] linear weight, or an embedding
/// table) in f32, bf16 or q8, read in place: from the model's own allocation, or from a file mapping
/// that every rank of a node shares. Products against it decode tiles of rows to Float32 just
/// before each sgemm (`FrozenProducts`); f32 needs no decoding and multiplies in place.
public struct FrozenMatrix: @unchecked Sendable {
    public let dtype: BaseDType
    public let rows: Int
    public let cols: Int
    public let raw: UnsafeRawPointer

    public init(dtype: BaseDType, rows: Int, cols: Int, raw: UnsafeRawPointer) {
        precondition(dtype.fits(cols: cols), "a q8 row needs a multiple of 32 values, not \(cols)")
        self.dtype = dtype; self.rows = rows; self.cols = cols; self.raw = raw
    }

    /// An f32 matrix at `pointer`.
    public init(rows: Int, cols: Int, float32 pointer: UnsafePointer<Float>) {
        self.init(dtype: .f32, rows: rows, cols: cols, raw: UnsafeRawPointer(pointer))
    }

    public var byteCount: Int { dtype.bytes(rows: rows, cols: cols) }
    var rowBytes: Int { dtype.bytes(rows: 1, cols: cols) }

    /// The values themselves when they are f32 (no decoding needed).
    public var float32: UnsafePointer<Float>? { dtype == .f32 ? raw.assumingMemoryBound(to: Float.self) : nil }

    /// Rows lo..<hi as Float32 into `out` [hi − lo, cols].
    public func decodeRows(_ lo: Int, _ hi: Int, into out: UnsafeMutablePointer<Float>) {
        let n = (hi - lo) * cols
        let src = raw + lo * rowBytes
        switch dtype {
        case .f32:
            out.update(from: src.assumingMemoryBound(to: Float.self), count: n)
        case .bf16:
            let s = src.assumingMemoryBound(to: UInt16.self)
            for i in 0..<n { out[i] = Float(bitPattern: UInt32(s[i]) << 16) }
        case .q8:
            for b in 0..<(n / 32) {
                let block = src + 34 * b
                let d = HalfFloat.float(UInt16(littleEndian: block.loadUnaligned(as: UInt16.self)))
                let q = (block + 2).assumingMemoryBound(to: Int8.self)
                let o = out + 32 * b
                for j in 0..<32 { o[j] = Float(q[j]) * d }
            }
        }
    }

    /// Row `r` as Float32 (an embedding lookup).
    public func decodeRow(_ r: Int, into out: UnsafeMutablePointer<Float>) { decodeRows(r, r + 1, into: out) }
}

/// Encoding Float32 weights into a stored dtype, as the reference tools do.
public enum FrozenEncoding {
    /// bfloat16 bits of `x`, rounded to nearest even (PyTorch's `x.to(torch.bfloat16)`); a NaN stays a quiet NaN.
    /// Branch-free, so that loops over it vectorise.
    @inline(__always) public static func bf16(_ x: Float) -> UInt16 {
        let bits = x.bitPattern
        let rounded = (bits &+ 0x7fff &+ ((bits >> 16) & 1)) >> 16
        let quiet = (bits >> 16) | 0x40
        return UInt16(truncatingIfNeeded: bits & 0x7fff_ffff > 0x7f80_0000 ? quiet : rounded)
    }

    /// `rows` × `cols` values of `x` (leading dimension `ldx`) as bf16 (`bf16(_:)` each) into packed `out`.
    public static func bf16Rows(_ x: UnsafePointer<Float>, ldx: Int, rows: Int, cols: Int, into out: UnsafeMutablePointer<UInt16>) {
        for r in 0..<rows {
            let src = x + r * ldx, dst = out + r * cols
            for j in 0..<cols { dst[j] = bf16(src[j]) }
        }
    }

    /// `values` (a multiple of 32) as Q8_0 blocks into `out` (34 bytes per block), as gguf-py's
    /// `quants.quantize` and ggml's `quantize_row_q8_0_ref` compute them: d = max|w|/127 in Float32,
    /// q = round-half-away(w/d) (0 when d = 0), d stored as f16.
    public static func q8(_ values: UnsafeBufferPointer<Float>, into out: UnsafeMutableRawPointer) {
        precondition(values.count % 32 == 0, "Q8_0 needs a multiple of 32 values")
        for b in 0..<(values.count / 32) {
            var amax: Float = 0
            for j in 0..<32 { amax = max(amax, abs(values[32 * b + j])) }
            let d = amax / 127
            let id: Float = d == 0 ? 0 : 1 / d
            let block = out + 34 * b
            block.storeBytes(of: HalfFloat.bits(d).littleEndian, as: UInt16.self)
            for j in 0..<32 {
                let q = (values[32 * b + j] * id).rounded(.toNearestOrAwayFromZero)
                block.storeBytes(of: Int8(max(-128, min(127, q))), toByteOffset: 2 + j, as: Int8.self)
            }
        }
    }

    /// `values` in `dtype` into `out` (`dtype.bytes(rows: 1, cols: values.count)` bytes).
    public static func encode(_ values: UnsafeBufferPointer<Float>, as dtype: BaseDType, into out: UnsafeMutableRawPointer) {
        switch dtype {
        case .f32: out.copyMemory(from: values.baseAddress!, byteCount: 4 * values.count)
        case .bf16:
            let o = out.assumingMemoryBound(to: UInt16.self)
            for i in values.indices { o[i] = bf16(values[i]) }
        case .q8: q8(values, into: out)
        }
    }
}

/// IEEE binary16 ⇄ Float32, exact, in software (the same bits on every CPU).
public enum HalfFloat {
    /// Half to float bits, exact: subnormals are normalised, infinities kept, and a NaN keeps its sign and
    /// payload (quiet or signalling) shifted into the float's mantissa, as numpy's `astype(np.float32)` does.
    /// Pure bit arithmetic, so no hardware conversion can quiet a signalling NaN.
    public static func floatBits(_ h: UInt16) -> UInt32 {
        let sign = UInt32(h & 0x8000) << 16, exp = UInt32(h >> 10) & 0x1f, mant = UInt32(h & 0x03ff)
        if exp == 0x1f { return sign | 0x7f80_0000 | (mant << 13) }
        if exp != 0 { return sign | ((exp + 112) << 23) | (mant << 13) }
        if mant == 0 { return sign }
        var m = mant, e: UInt32 = 113  // value = mant · 2^-24 = 1.f · 2^(e - 127) after normalising
        while m & 0x0400 == 0 { m <<= 1; e -= 1 }
        return sign | (e << 23) | ((m & 0x03ff) << 13)
    }

    /// Half to float (`floatBits`).
    public static func float(_ h: UInt16) -> Float { Float(bitPattern: floatBits(h)) }

    /// Float to half, rounded to nearest even (numpy's `astype(np.float16)`): overflow to infinity,
    /// underflow through the subnormals to zero.
    public static func bits(_ x: Float) -> UInt16 {
        let b = x.bitPattern
        let sign = UInt16((b >> 16) & 0x8000)
        let exp = Int((b >> 23) & 0xff), mant = b & 0x7f_ffff
        if exp == 0xff { return sign | 0x7c00 | (mant != 0 ? 0x200 | UInt16(mant >> 13) : 0) }
        let e = exp - 127 + 15
        if e >= 0x1f { return sign | 0x7c00 }
        if e <= 0 {
            if e < -10 { return sign }
            let m = mant | 0x80_0000                  // the implicit bit
            let shift = UInt32(14 - e)                // to the subnormal's 10 bits
            let half = UInt32(1) << (shift - 1)
            var r = m >> shift
            let rest = m & ((UInt32(1) << shift) - 1)
            if rest > half || (rest == half && (r & 1) == 1) { r += 1 }
            return sign | UInt16(r)
        }
        var r = (UInt32(e) << 10) | (mant >> 13)
        let rest = mant & 0x1fff
        if rest > 0x1000 || (rest == 0x1000 && (r & 1) == 1) { r += 1 }   // may carry into the exponent: still right
        return sign | UInt16(r)
    }
}
