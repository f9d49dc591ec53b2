/// fp16 and bf16 conversions of `UpdateCodec`, on bit patterns (the same bits on every CPU).
enum HalfFloat {
    /// IEEE binary16 nearest to `x` (ties to even); finite values beyond ±65504 saturate to it, so a
    /// finite update stays finite; NaN stays NaN (the server then rejects the update).
    static func fp16(_ x: Float) -> UInt16 {
        if x.isNaN { return 0x7E00 }
        let clamped = min(max(x, -65504), 65504)
        return Float16(clamped).bitPattern
    }

    static func float(fp16 h: UInt16) -> Float { Float(Float16(bitPattern: h)) }

    /// bfloat16 nearest to `x` (ties to even); NaN stays a quiet NaN. Values whose rounding would
    /// overflow saturate to the largest finite bfloat16.
    static func bf16(_ x: Float) -> UInt16 {
        let u = x.bitPattern
        if x.isNaN { return UInt16(u >> 16) | 0x0040 }
        let rounded = (u &+ 0x7FFF &+ ((u >> 16) & 1)) >> 16
        if x.isFinite && (rounded & 0x7F80) == 0x7F80 { return UInt16(rounded - 1) }   // saturate at ±(max finite)
        return UInt16(rounded)
    }

    static func float(bf16 h: UInt16) -> Float { Float(bitPattern: UInt32(h) << 16) }
}
