import PilotCore

/// How a vector of Float32 values crosses the network (`exchange.compress`, `exchange.compress_down`;
/// docs/compression.md). Each codec turns n values into bytes and back; the byte count depends only
/// on n (and, for top-k, on the fraction), so both sides know it before anything is sent:
///
///     none   4n        the Float32 values (the exchange then sends them as before, uncoded)
///     fp16   2n        IEEE binary16, round to nearest even, saturating at ±65504
///     bf16   2n        bfloat16 (the high half of the Float32), round to nearest even
///     int8   n + 4⌈n/64⌉  blocks of 64: one Float32 scale absmax/127 per block, then the codes
///     topk   4 + 8k    k = ⌈fraction·n⌉ (at least 1 when n > 0): k, then k UInt32 indices in
///                      increasing order, then their k Float32 values; the others decode as 0
///
/// Every encoding is a pure function of the values (little-endian), so the same values give the
/// same bytes on every rank.
public enum UpdateCodec: String, Sendable, CaseIterable, Decodable {
    case none, fp16, bf16, int8, topk

    /// Values per int8 block.
    public static let int8Block = 64

    /// Whether decoding gives back other values than were encoded.
    public var isLossy: Bool { self != .none }

    /// The values top-k keeps of `n`.
    public static func topkCount(_ n: Int, fraction: Double) -> Int {
        n == 0 ? 0 : min(n, max(1, Int((fraction * Double(n)).rounded(.up))))
    }

    /// The bytes `n` values take in this codec.
    public func byteCount(_ n: Int, fraction: Double = 1) -> Int {
        switch self {
        case .none: return 4 * n
        case .fp16, .bf16: return 2 * n
        case .int8: return n + 4 * ((n + Self.int8Block - 1) / Self.int8Block)
        case .topk: return 4 + 8 * Self.topkCount(n, fraction: fraction)
        }
    }

    public func encode(_ x: [Float], fraction: Double = 1) -> [UInt8] {
        var out = ByteWriter(capacity: byteCount(x.count, fraction: fraction))
        switch self {
        case .none: for v in x { out.put(v) }
        case .fp16: for v in x { out.put(HalfFloat.fp16(v)) }
        case .bf16: for v in x { out.put(HalfFloat.bf16(v)) }
        case .int8: Int8Blocks.encode(x, into: &out)
        case .topk: TopK.encode(x, keep: Self.topkCount(x.count, fraction: fraction), into: &out)
        }
        return out.bytes
    }

    /// The `n` values `bytes` encode; throws when the byte count is not this codec's for `n`.
    public func decode(_ bytes: ArraySlice<UInt8>, count n: Int, fraction: Double = 1) throws -> [Float] {
        guard bytes.count == byteCount(n, fraction: fraction) else {
            throw PilotError.message("exchange: \(bytes.count) bytes cannot be \(n) values in \(rawValue) (\(byteCount(n, fraction: fraction)) bytes)")
        }
        var r = ByteReader(bytes)
        switch self {
        case .none: return (0..<n).map { _ in r.float() }
        case .fp16: return (0..<n).map { _ in HalfFloat.float(fp16: r.uint16()) }
        case .bf16: return (0..<n).map { _ in HalfFloat.float(bf16: r.uint16()) }
        case .int8: return Int8Blocks.decode(&r, count: n)
        case .topk: return try TopK.decode(&r, count: n)
        }
    }
}

/// Little-endian bytes out.
struct ByteWriter {
    var bytes: [UInt8] = []
    init(capacity: Int) { bytes.reserveCapacity(capacity) }
    mutating func put(_ v: UInt8) { bytes.append(v) }
    mutating func put(_ v: UInt16) { bytes.append(UInt8(v & 0xFF)); bytes.append(UInt8(v >> 8)) }
    mutating func put(_ v: UInt32) { for s in stride(from: 0, to: 32, by: 8) { bytes.append(UInt8((v >> UInt32(s)) & 0xFF)) } }
    mutating func put(_ v: Float) { put(v.bitPattern) }
}

/// Little-endian bytes in (the caller has checked the length).
struct ByteReader {
    let bytes: ArraySlice<UInt8>
    var at: Int
    init(_ bytes: ArraySlice<UInt8>) { self.bytes = bytes; at = bytes.startIndex }
    mutating func uint8() -> UInt8 { defer { at += 1 }; return bytes[at] }
    mutating func uint16() -> UInt16 { defer { at += 2 }; return UInt16(bytes[at]) | UInt16(bytes[at + 1]) << 8 }
    mutating func uint32() -> UInt32 {
        defer { at += 4 }
        return UInt32(bytes[at]) | UInt32(bytes[at + 1]) << 8 | UInt32(bytes[at + 2]) << 16 | UInt32(bytes[at + 3]) << 24
    }
    mutating func float() -> Float { Float(bitPattern: uint32()) }
}
