import Foundation
import PilotCore
import PilotTensor

/// A `.safetensors` file (https://github.com/huggingface/safetensors): an 8-byte little-endian header
/// length N, N bytes of JSON (`{"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {…}}`),
/// then the data area, which the offsets index. Every length and offset is checked against the file
/// before it is used, so a lying header gets an error that names the file and tensor, never a crash or
/// a huge allocation. F32, F16 and BF16 are read (converted exactly to F32); other dtypes are refused,
/// but for pilot's q8 matrices (`pilot model import --dtype q8`): an I8 tensor `X` [rows, cols] with its
/// F16 scales `X_scale` [rows, cols/32] is GGUF's Q8_0 split into two arrays (w = q·d for each block of
/// 32 along a row; numpy: `q.reshape(rows, -1, 32) * d[..., None]`), seen here as one Q8_0 tensor `X`.
public final class SafetensorsFile: TensorSource {
    public let path: String
    public let tensorInfos: [TensorInfo]
    public let metadata: [String: String]
    let file: MappedFile
    let dataStart: Int
    let ranges: [String: Range<Int>]
    let index: [String: Int]
    /// The F16 scales of each q8 tensor (`X_scale` of an I8 `X`), in the data area.
    let scaleRanges: [String: Range<Int>]
    /// The name of a q8 tensor's scales.
    public static func scaleName(_ name: String) -> String { name + "_scale" }

    /// Largest JSON header we accept (the format's own limit is 100 MB).
    static let maxHeader = 100_000_000

    public init(path: String) throws {
        self.path = path
        file = try MappedFile(path: path)
        let size = file.count
        let fix = "; the file is truncated or not a safetensors file: re-download or re-save it"
        guard size >= 8 else { throw PilotError.invalidArgument("\(path): \(size) bytes is too short for a safetensors header\(fix)") }
        let raw = UInt64(littleEndian: file.bytes.loadUnaligned(as: UInt64.self))
        // Checked as the unsigned value the format defines: masking the top bit would turn a
        // corrupt length into a plausible one and read the wrong bytes as the header.
        guard raw <= UInt64(Self.maxHeader), Int(raw) <= size - 8 else {
            throw PilotError.invalidArgument("\(path): the header says it is \(raw) bytes long but the file has \(size - 8) bytes after the length (at most \(Self.maxHeader) allowed)\(fix)")
        }
        let n = Int(raw)
        let json = Data(file.bytes[8..<(8 + n)])
        guard let obj = (try? JSONSerialization.jsonObject(with: json)) as? [String: Any] else {
            throw PilotError.invalidArgument("\(path): the \(n)-byte header is not a JSON object\(fix)")
        }
        dataStart = 8 + n
        let dataSize = size - dataStart
        var meta: [String: String] = [:]
        if let m = obj["__metadata__"] as? [String: Any] { for (k, v) in m { meta[k] = "\(v)" } }
        metadata = meta

        var entries: [(TensorInfo, Range<Int>)] = []
        for (name, value) in obj where name != "__metadata__" {
            guard let t = value as? [String: Any], let dt = t["dtype"] as? String,
                  let shape = (t["shape"] as? [NSNumber])?.map(\.intValue), let off = (t["data_offsets"] as? [NSNumber])?.map(\.intValue),
                  off.count == 2 else {
                throw PilotError.invalidArgument("\(path): tensor '\(name)' lacks dtype, shape or data_offsets in the header\(fix)")
            }
            guard let dtype = TensorDType(rawValue: dt), [.f32, .f16, .bf16, .i8].contains(dtype) else {
                throw PilotError.invalidArgument("\(path): tensor '\(name)' has dtype \(dt); pilot reads F32, F16 and BF16 safetensors (convert the checkpoint, e.g. model.to(torch.bfloat16).save_pretrained(DIR)), and I8 only as the q8 weights `pilot model import --dtype q8` writes")
            }
            guard shape.allSatisfy({ $0 >= 0 && $0 < 1 << 40 }) else {
                throw PilotError.invalidArgument("\(path): tensor '\(name)' has an impossible shape \(shape)\(fix)")
            }
            var count = 1
            for d in shape { let (p, o) = count.multipliedReportingOverflow(by: d); guard !o, p < 1 << 40 else { throw PilotError.invalidArgument("\(path): tensor '\(name)' shape \(shape) is too large\(fix)") }; count = p }
            let elem = dtype == .f32 ? 4 : dtype == .i8 ? 1 : 2
            guard off[0] >= 0, off[1] >= off[0], off[1] <= dataSize else {
                throw PilotError.invalidArgument("\(path): tensor '\(name)' data_offsets \(off) lie outside the \(dataSize)-byte data area\(fix)")
            }
            guard off[1] - off[0] == count * elem else {
                throw PilotError.invalidArgument("\(path): tensor '\(name)' has \(off[1] - off[0]) bytes but shape \(shape) in \(dt) needs \(count * elem)\(fix)")
            }
            entries.append((TensorInfo(name: name, shape: shape, dtype: dtype), off[0]..<off[1]))
        }
        entries.sort { $0.1.lowerBound != $1.1.lowerBound ? $0.1.lowerBound < $1.1.lowerBound : $0.0.name < $1.0.name }
        var last: (name: String, end: Int)? = nil  // the non-empty tensor that ends furthest so far
        for (t, r) in entries where !r.isEmpty {
            if let l = last, r.lowerBound < l.end {
                throw PilotError.invalidArgument("\(path): tensors '\(l.name)' and '\(t.name)' overlap in the data area\(fix)")
            }
            if r.upperBound > (last?.end ?? 0) { last = (t.name, r.upperBound) }
        }
        // q8: each I8 tensor with its F16 scales becomes one Q8_0 tensor; the scales are not a tensor of their own
        var byName: [String: (TensorInfo, Range<Int>)] = [:]
        for e in entries { byName[e.0.name] = e }
        var scales: [String: Range<Int>] = [:]
        for (t, _) in entries where t.dtype == .i8 {
            let s = Self.scaleName(t.name)
            let scale = byName[s]
            guard t.shape.count == 2, t.shape[1] % 32 == 0, let scale, scale.0.dtype == .f16, scale.0.shape == [t.shape[0], t.shape[1] / 32] else {
                throw PilotError.invalidArgument("\(path): tensor '\(t.name)' is I8 \(t.shape); pilot reads I8 only as a q8 matrix (rows a multiple of 32 long) with its F16 scales '\(s)' [rows, cols/32], as `pilot model import --dtype q8` writes; \(byName[s].map { "'\(s)' is \($0.0.dtype.rawValue) \($0.0.shape)" } ?? "'\(s)' is missing")\(fix)")
            }
            scales[t.name] = scale.1
        }
        let kept = entries.filter { e in !(e.0.name.hasSuffix("_scale") && scales[String(e.0.name.dropLast(6))] != nil) }
        tensorInfos = kept.map { $0.0.dtype == .i8 ? TensorInfo(name: $0.0.name, shape: $0.0.shape, dtype: .q8_0) : $0.0 }
        var r: [String: Range<Int>] = [:], ix: [String: Int] = [:]
        for (i, e) in kept.enumerated() { r[e.0.name] = e.1; ix[e.0.name] = i }
        ranges = r
        index = ix
        scaleRanges = scales
    }

    /// The stored bytes of `range` in the data area.
    func data(_ range: Range<Int>) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: file.bytes[(dataStart + range.lowerBound)..<(dataStart + range.upperBound)])
    }

    /// Q8_0 tensor `name` as GGUF's 34-byte blocks (f16 d, 32 int8 q) into `out`.
    func q8Blocks(_ name: String, into out: UnsafeMutableRawBufferPointer) {
        let q = data(ranges[name]!), d = data(scaleRanges[name]!)
        for b in 0..<(q.count / 32) {
            let o = out.baseAddress! + 34 * b
            o.copyMemory(from: d.baseAddress! + 2 * b, byteCount: 2)
            (o + 2).copyMemory(from: q.baseAddress! + 32 * b, byteCount: 32)
        }
    }

    /// bf16 stored as BF16 and q8 stored as q8 are copied; anything else goes through Float32.
    public func readEncoded(_ name: String, as dtype: BaseDType, into out: UnsafeMutableRawBufferPointer) throws {
        guard let i = index[name], let range = ranges[name] else { throw PilotError.notFound(file: path, object: name) }
        let info = tensorInfos[i]
        guard out.count == dtype.bytes(rows: 1, cols: info.count) else {
            throw PilotError.invalidArgument("\(path): tensor '\(name)' in \(dtype.rawValue) takes \(dtype.bytes(rows: 1, cols: info.count)) bytes, the destination \(out.count)")
        }
        switch (info.dtype, dtype) {
        case (.bf16, .bf16), (.f32, .f32):
            out.copyMemory(from: data(range))
            file.release(data(range))
        case (.q8_0, .q8): q8Blocks(name, into: out)
        default: try encodeFromFloat32(name, as: dtype, into: out)
        }
    }

    public func info(_ name: String) -> TensorInfo? { index[name].map { tensorInfos[$0] } }

    public func readFloat32(_ name: String, into out: UnsafeMutableBufferPointer<Float>) throws {
        guard let i = index[name], let range = ranges[name] else { throw PilotError.notFound(file: path, object: name) }
        let info = tensorInfos[i]
        guard out.count == info.count else {
            throw PilotError.invalidArgument("\(path): tensor '\(name)' has \(info.count) elements, the destination \(out.count)")
        }
        if info.dtype == .q8_0 {
            let blocks = UnsafeMutableRawBufferPointer.allocate(byteCount: max(1, info.count / 32 * 34), alignment: 2)
            defer { blocks.deallocate() }
            q8Blocks(name, into: blocks)
            try Dequantize.run(.q8_0, UnsafeRawBufferPointer(rebasing: blocks[0..<(info.count / 32 * 34)]), into: out, what: "\(path): tensor '\(name)'")
            return
        }
        let src = data(range)
        guard [.f32, .f16, .bf16].contains(info.dtype) else {
            throw PilotError.invalidArgument("\(path): tensor '\(name)': dtype \(info.dtype.rawValue) is not a safetensors dtype")
        }
        try Dequantize.run(info.dtype, src, into: out, what: "\(path): tensor '\(name)'")
        file.release(src)
    }
}
