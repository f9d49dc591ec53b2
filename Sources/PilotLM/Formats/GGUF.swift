import PilotCore

/// One metadata value of a GGUF file. Arrays are stored unboxed, one typed buffer per element kind
/// (unsigned and signed integers, floats, booleans, strings): a 150k-entry vocabulary is one
/// `[String]`, not 150k enum values, and a corrupt count cannot multiply into boxed elements.
public enum GGUFValue: Sendable, Equatable {
    case uint(UInt64), int(Int64), float(Double), bool(Bool), string(String)
    case uints([UInt64]), ints([Int64]), floats([Double]), bools([Bool]), strings([String])
}

/// A GGUF file (llama.cpp's format, versions 2 and 3, little-endian): magic `GGUF`, version, tensor and
/// key-value counts, the metadata, the tensor infos (name, dims `ne` innermost first, ggml type, offset),
/// then the data area aligned to `general.alignment` (default 32). Every count, length and offset is
/// checked against the file size before it is used. Tensor shapes are exposed row-major, the reverse of
/// `ne`, which for a linear weight is Hugging Face's `[out, in]`.
public final class GGUFFile: TensorSource {
    public let path: String
    public let version: UInt32
    public let metadata: [String: GGUFValue]
    /// Metadata keys in file order.
    public let metadataKeys: [String]
    public let tensorInfos: [TensorInfo]
    let file: MappedFile
    let dataStart: Int
    let offsets: [Int]
    let index: [String: Int]

    /// The most elements a metadata array may have (16.7 M; vocabularies and merges have a few hundred thousand).
    static let maxArrayElements = 1 << 24
    /// ggml type ids of the tensor types we read, and the names of some we do not (for the error).
    static let ggmlTypes: [UInt32: TensorDType] = [0: .f32, 1: .f16, 2: .q4_0, 3: .q4_1, 8: .q8_0, 30: .bf16]
    static let ggmlNames: [UInt32: String] = [6: "Q5_0", 7: "Q5_1", 9: "Q8_1", 10: "Q2_K", 11: "Q3_K", 12: "Q4_K", 13: "Q5_K",
                                              14: "Q6_K", 15: "Q8_K", 16: "IQ2_XXS", 17: "IQ2_XS", 18: "IQ3_XXS", 19: "IQ1_S",
                                              20: "IQ4_NL", 21: "IQ3_S", 22: "IQ2_S", 23: "IQ4_XS", 24: "I8", 25: "I16",
                                              26: "I32", 27: "I64", 28: "F64", 29: "IQ1_M", 34: "TQ1_0", 35: "TQ2_0"]

    public init(path: String) throws {
        self.path = path
        file = try MappedFile(path: path)
        var r = Reader(bytes: file.bytes, path: path)
        guard file.count >= 24, try r.u32() == 0x4655_4747 else {
            throw PilotError.invalidArgument("\(path) is not a GGUF file (it does not start with the magic 'GGUF')")
        }
        version = try r.u32()
        guard version == 2 || version == 3 else {
            throw PilotError.invalidArgument("\(path): GGUF version \(version) is not supported (pilot reads versions 2 and 3)")
        }
        let nTensors = try r.u64(), nKV = try r.u64()
        // Each tensor info and each key-value pair takes at least 8 bytes, so larger counts are lies.
        guard nTensors <= UInt64(file.count / 8), nKV <= UInt64(file.count / 8) else {
            throw PilotError.invalidArgument("\(path): the header claims \(nTensors) tensors and \(nKV) metadata entries, more than a \(file.count)-byte file can hold; the file is corrupt")
        }
        var meta: [String: GGUFValue] = [:], keys: [String] = []
        for _ in 0..<nKV {
            let key = try r.string()
            let type = try r.u32()
            meta[key] = try r.value(type: type, key: key, depth: 0)
            keys.append(key)
        }
        metadata = meta
        metadataKeys = keys
        var alignment = 32
        if case let .uint(a)? = meta["general.alignment"] {
            guard a > 0, a <= 1 << 20, a & (a - 1) == 0 else { throw PilotError.invalidArgument("\(path): general.alignment \(a) is not a power of two") }
            alignment = Int(a)
        }

        var infos: [TensorInfo] = [], offs: [Int] = [], ix: [String: Int] = [:]
        for _ in 0..<nTensors {
            let name = try r.string()
            let nDims = try r.u32()
            guard nDims >= 1, nDims <= 4 else { throw PilotError.invalidArgument("\(path): tensor '\(name)' has \(nDims) dimensions (GGUF allows 1–4); the file is corrupt") }
            var ne: [Int] = [], count = 1
            for _ in 0..<nDims {
                let d = try r.u64()
                // No dimension, and no element count, can exceed the file's bytes (every type takes ≥ 4 bits).
                guard d <= UInt64(2 * file.count), case let (p, false) = count.multipliedReportingOverflow(by: Int(d)), p <= 2 * file.count else {
                    throw PilotError.invalidArgument("\(path): tensor '\(name)' claims dimensions \(ne + [Int(truncatingIfNeeded: d)])…, more elements than the \(file.count)-byte file can hold; the file is corrupt")
                }
                count = p
                ne.append(Int(d))
            }
            let type = try r.u32()
            guard let dtype = Self.ggmlTypes[type] else {
                let n = Self.ggmlNames[type] ?? "ggml type \(type)"
                throw PilotError.invalidArgument("\(path): tensor '\(name)' is stored as \(n); pilot reads F32, F16, BF16, Q8_0, Q4_0 and Q4_1 GGUF tensors (re-quantize the model to one of these, e.g. llama-quantize IN.gguf OUT.gguf Q8_0)")
            }
            let offset = try r.u64()
            guard ix[name] == nil else { throw PilotError.invalidArgument("\(path): tensor '\(name)' appears twice") }
            let bw = Dequantize.blockBytes(dtype).weights
            guard ne[0] % bw == 0 else {
                throw PilotError.invalidArgument("\(path): tensor '\(name)' has rows of \(ne[0]) elements, not a multiple of the \(dtype.rawValue) block of \(bw)")
            }
            ix[name] = infos.count
            infos.append(TensorInfo(name: name, shape: ne.reversed(), dtype: dtype))
            guard offset < UInt64(file.count) else {
                throw PilotError.invalidArgument("\(path): tensor '\(name)' starts at data offset \(offset), past the end of the \(file.count)-byte file; the file is truncated or corrupt")
            }
            offs.append(Int(offset))
        }
        let start = (r.offset + alignment - 1) / alignment * alignment
        for (i, t) in infos.enumerated() {
            let (bb, bw) = Dequantize.blockBytes(t.dtype)
            let (bytes, o) = (t.count / bw).multipliedReportingOverflow(by: bb)
            guard !o, offs[i] % alignment == 0, start + offs[i] + bytes <= file.count else {
                throw PilotError.invalidArgument("\(path): tensor '\(t.name)' (\(t.dtype.rawValue) \(t.shape)) needs bytes \(offs[i])..<\(offs[i] + bytes) of the data area, which ends at \(file.count - start); the file is truncated or corrupt: download it again")
            }
        }
        dataStart = start
        tensorInfos = infos
        offsets = offs
        index = ix
    }

    public func info(_ name: String) -> TensorInfo? { index[name].map { tensorInfos[$0] } }

    /// The stored bytes of tensor `name`.
    public func rawBytes(_ name: String) throws -> UnsafeRawBufferPointer {
        guard let i = index[name] else { throw PilotError.notFound(file: path, object: name) }
        let t = tensorInfos[i]
        let (bb, bw) = Dequantize.blockBytes(t.dtype)
        let start = dataStart + offsets[i]
        return UnsafeRawBufferPointer(rebasing: file.bytes[start..<(start + t.count / bw * bb)])
    }

    public func readFloat32(_ name: String, into out: UnsafeMutableBufferPointer<Float>) throws {
        guard let i = index[name] else { throw PilotError.notFound(file: path, object: name) }
        let t = tensorInfos[i]
        guard out.count == t.count else { throw PilotError.invalidArgument("\(path): tensor '\(name)' has \(t.count) elements, the destination \(out.count)") }
        try Dequantize.run(t.dtype, try rawBytes(name), into: out, what: "\(path): tensor '\(name)'")
    }

    // MARK: typed metadata

    func missing(_ key: String, _ want: String) -> PilotError {
        metadata[key] == nil
            ? PilotError.invalidArgument("\(path) has no metadata key '\(key)'; pilot needs it to import the model")
            : PilotError.invalidArgument("\(path): metadata key '\(key)' is not \(want)")
    }

    public func string(_ key: String) throws -> String {
        guard case let .string(s)? = metadata[key] else { throw missing(key, "a string") }
        return s
    }

    public func int(_ key: String) throws -> Int {
        switch metadata[key] {
        case let .uint(u)? where u <= UInt64(Int.max): return Int(u)
        case let .int(i)?: return Int(i)
        default: throw missing(key, "an integer")
        }
    }

    public func float(_ key: String) throws -> Double {
        switch metadata[key] {
        case let .float(f)?: return f
        case let .uint(u)?: return Double(u)
        case let .int(i)?: return Double(i)
        default: throw missing(key, "a number")
        }
    }

    public func bool(_ key: String) throws -> Bool {
        guard case let .bool(b)? = metadata[key] else { throw missing(key, "a boolean") }
        return b
    }

    public func strings(_ key: String) throws -> [String] {
        guard case let .strings(a)? = metadata[key] else { throw missing(key, "an array of strings") }
        return a
    }

    public func ints(_ key: String) throws -> [Int] {
        switch metadata[key] {
        case let .ints(a)?: return a.map { Int($0) }
        case let .uints(a)? where a.allSatisfy({ $0 <= UInt64(Int.max) }): return a.map { Int($0) }
        default: throw missing(key, "an array of integers")
        }
    }
}

/// A bounds-checked little-endian cursor over the mapped file.
private struct Reader {
    let bytes: UnsafeRawBufferPointer
    let path: String
    var offset = 0

    func truncated(_ what: String) -> PilotError {
        PilotError.invalidArgument("\(path) is truncated or corrupt: \(what) at byte \(offset) runs past the end of the \(bytes.count)-byte file; download it again")
    }

    mutating func take(_ n: Int, _ what: String) throws -> Int {
        guard n >= 0, n <= bytes.count - offset else { throw truncated(what) }
        defer { offset += n }
        return offset
    }

    mutating func u8() throws -> UInt8 { bytes[try take(1, "a byte")] }
    mutating func u16() throws -> UInt16 { UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: try take(2, "a 16-bit value"), as: UInt16.self)) }
    mutating func u32() throws -> UInt32 { UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: try take(4, "a 32-bit value"), as: UInt32.self)) }
    mutating func u64() throws -> UInt64 { UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: try take(8, "a 64-bit value"), as: UInt64.self)) }

    mutating func string() throws -> String {
        let n = try u64()
        guard n <= UInt64(bytes.count - offset) else { throw truncated("a string of \(n) bytes") }
        let o = try take(Int(n), "a string")
        if n == 0 { return "" }
        return String(decoding: UnsafeRawBufferPointer(start: bytes.baseAddress! + o, count: Int(n)), as: UTF8.self)
    }

    mutating func value(type: UInt32, key: String, depth: Int) throws -> GGUFValue {
        switch type {
        case 0: return .uint(UInt64(try u8()))
        case 1: return .int(Int64(Int8(bitPattern: try u8())))
        case 2: return .uint(UInt64(try u16()))
        case 3: return .int(Int64(Int16(bitPattern: try u16())))
        case 4: return .uint(UInt64(try u32()))
        case 5: return .int(Int64(Int32(bitPattern: try u32())))
        case 6: return .float(Double(Float(bitPattern: try u32())))
        case 7: return .bool(try u8() != 0)
        case 8: return .string(try string())
        case 9:
            guard depth == 0 else { throw PilotError.invalidArgument("\(path): metadata key '\(key)' nests arrays, which pilot does not read") }
            let elem = try u32()
            let n = try u64()
            // The smallest encoding of one element: 1, 2, 4 or 8 bytes, a string's 8-byte length.
            let least: [UInt32: UInt64] = [0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 8: 8, 9: 12, 10: 8, 11: 8, 12: 8]
            guard let size = least[elem] else {
                throw PilotError.invalidArgument("\(path): metadata key '\(key)' is an array of value type \(elem), which is not a GGUF type; the file is corrupt")
            }
            guard n <= UInt64(bytes.count - offset) / size else { throw truncated("an array of \(n) elements for key '\(key)'") }
            guard n <= UInt64(GGUFFile.maxArrayElements) else {
                throw PilotError.invalidArgument("\(path): metadata key '\(key)' is an array of \(n) elements, more than the \(GGUFFile.maxArrayElements) pilot reads (the largest vocabularies have a few hundred thousand); the file is corrupt or not a model pilot imports")
            }
            let count = Int(n)
            func collect<T>(_ element: (inout Reader) throws -> T) throws -> [T] {
                var out: [T] = []
                out.reserveCapacity(count)
                for _ in 0..<count { out.append(try element(&self)) }
                return out
            }
            switch elem {
            case 0: return .uints(try collect { UInt64(try $0.u8()) })
            case 1: return .ints(try collect { Int64(Int8(bitPattern: try $0.u8())) })
            case 2: return .uints(try collect { UInt64(try $0.u16()) })
            case 3: return .ints(try collect { Int64(Int16(bitPattern: try $0.u16())) })
            case 4: return .uints(try collect { UInt64(try $0.u32()) })
            case 5: return .ints(try collect { Int64(Int32(bitPattern: try $0.u32())) })
            case 6: return .floats(try collect { Double(Float(bitPattern: try $0.u32())) })
            case 7: return .bools(try collect { try $0.u8() != 0 })
            case 8: return .strings(try collect { try $0.string() })
            case 10: return .uints(try collect { try $0.u64() })
            case 11: return .ints(try collect { Int64(bitPattern: try $0.u64()) })
            case 12: return .floats(try collect { Double(bitPattern: try $0.u64()) })
            default: throw PilotError.invalidArgument("\(path): metadata key '\(key)' nests arrays, which pilot does not read")
            }
        case 10: return .uint(try u64())
        case 11: return .int(Int64(bitPattern: try u64()))
        case 12: return .float(Double(bitPattern: try u64()))
        default: throw PilotError.invalidArgument("\(path): metadata key '\(key)' has value type \(type), which is not a GGUF type; the file is corrupt")
        }
    }
}
