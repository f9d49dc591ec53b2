import PilotCore
import PilotTensor

/// Stored element types to Float32, bit for bit as gguf-py's `gguf.quants.dequantize` computes them
/// (checked in DequantizeTests and on every tensor of SmolLM2). Each block format is ggml's:
/// - Q8_0: 34 bytes per 32 weights: f16 scale d, 32 × int8 q; w = q·d.
/// - Q4_0: 18 bytes: f16 d, 16 bytes of nibbles (low nibbles are elements 0–15, high 16–31); w = d·(q − 8).
/// - Q4_1: 20 bytes: f16 d, f16 m, 16 bytes of nibbles; w = d·q + m (a product, then a sum: no FMA).
public enum Dequantize {
    /// Bytes per block of 32 weights, and weights per block.
    public static func blockBytes(_ t: TensorDType) -> (bytes: Int, weights: Int) {
        switch t {
        case .f32: return (4, 1)
        case .f16, .bf16: return (2, 1)
        case .i8: return (1, 1)
        case .q8_0: return (34, 32)
        case .q4_0: return (18, 32)
        case .q4_1: return (20, 32)
        }
    }

    /// IEEE half to float bits, exact (`HalfFloat.floatBits`, the one conversion of the project).
    public static func halfBits(_ h: UInt16) -> UInt32 { HalfFloat.floatBits(h) }

    /// All 65,536 halves as floats, built once.
    static let halfTable: [Float] = (0...0xffff).map { Float(bitPattern: halfBits(UInt16($0))) }

    @inline(__always) public static func half(_ h: UInt16) -> Float { halfTable.withUnsafeBufferPointer { $0[Int(h)] } }

    @inline(__always) static func u16(_ p: UnsafeRawBufferPointer, _ o: Int) -> UInt16 {
        UInt16(littleEndian: p.loadUnaligned(fromByteOffset: o, as: UInt16.self))
    }

    public static func f16(_ src: UnsafeRawBufferPointer, into out: UnsafeMutableBufferPointer<Float>) {
        for i in 0..<out.count { out[i] = half(u16(src, 2 * i)) }
    }

    public static func bf16(_ src: UnsafeRawBufferPointer, into out: UnsafeMutableBufferPointer<Float>) {
        for i in 0..<out.count { out[i] = Float(bitPattern: UInt32(u16(src, 2 * i)) << 16) }
    }

    public static func q8_0(_ src: UnsafeRawBufferPointer, into out: UnsafeMutableBufferPointer<Float>) {
        for b in 0..<(out.count / 32) {
            let o = 34 * b
            let d = half(u16(src, o))
            for j in 0..<32 { out[32 * b + j] = Float(Int8(bitPattern: src[o + 2 + j])) * d }
        }
    }

    public static func q4_0(_ src: UnsafeRawBufferPointer, into out: UnsafeMutableBufferPointer<Float>) {
        for b in 0..<(out.count / 32) {
            let o = 18 * b
            let d = half(u16(src, o))
            for j in 0..<16 {
                let q = src[o + 2 + j]
                out[32 * b + j] = d * Float(Int8(q & 0x0f) - 8)
                out[32 * b + 16 + j] = d * Float(Int8(q >> 4) - 8)
            }
        }
    }

    public static func q4_1(_ src: UnsafeRawBufferPointer, into out: UnsafeMutableBufferPointer<Float>) {
        for b in 0..<(out.count / 32) {
            let o = 20 * b
            let d = half(u16(src, o)), m = half(u16(src, o + 2))
            for j in 0..<16 {
                let q = src[o + 4 + j]
                let lo = d * Float(q & 0x0f), hi = d * Float(q >> 4)
                out[32 * b + j] = lo + m
                out[32 * b + 16 + j] = hi + m
            }
        }
    }

    /// Converts `out.count` elements of type `t` from `src`, which must hold exactly their bytes; quantised
    /// rows must be whole blocks of 32. `what` names the tensor and file in the error.
    public static func run(_ t: TensorDType, _ src: UnsafeRawBufferPointer, into out: UnsafeMutableBufferPointer<Float>,
                           what: String = "tensor") throws {
        let (bb, bw) = blockBytes(t)
        guard out.count % bw == 0 else {
            throw PilotError.invalidArgument("\(what): \(out.count) elements of \(t.rawValue) are not whole blocks of \(bw) (rows must be a multiple of \(bw) long)")
        }
        guard src.count == out.count / bw * bb else {
            throw PilotError.invalidArgument("\(what): \(out.count) elements of \(t.rawValue) take \(out.count / bw * bb) bytes, but \(src.count) were given")
        }
        switch t {
        case .f32: for i in 0..<out.count { out[i] = Float(bitPattern: UInt32(littleEndian: src.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))) }
        case .f16: f16(src, into: out)
        case .bf16: bf16(src, into: out)
        case .q8_0: q8_0(src, into: out)
        case .q4_0: q4_0(src, into: out)
        case .q4_1: q4_1(src, into: out)
        case .i8: for i in 0..<out.count { out[i] = Float(Int8(bitPattern: src[i])) }
        }
    }
}
