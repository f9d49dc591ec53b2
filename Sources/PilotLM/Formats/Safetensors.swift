import Foundation
import PilotCore

/// A `.safetensors` file (https://github.com/huggingface/safetensors): an 8-byte little-endian header
/// length N, N bytes of JSON (`{"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {…}}`),
/// then the data area, which the offsets index. Every length and offset is checked against the file
/// before it is used, so a lying header gets an error that names the file and tensor, never a crash or
/// a huge allocation. F32, F16 and BF16 are read (converted exactly to F32); other dtypes are refused.
public final class SafetensorsFile: TensorSource {
    public let path: String
    public let tensorInfos: [TensorInfo]
    public let metadata: [String: String]
    let file: MappedFile
    let dataStart: Int
    let ranges: [String: Range<Int>]
    let index: [String: Int]

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
            guard let dtype = TensorDType(rawValue: dt), [.f32, .f16, .bf16].contains(dtype) else {
                throw PilotError.invalidArgument("\(path): tensor '\(name)' has dtype \(dt); pilot reads F32, F16 and BF16 safetensors (convert the checkpoint, e.g. model.to(torch.bfloat16).save_pretrained(DIR))")
            }
            guard shape.allSatisfy({ $0 >= 0 && $0 < 1 << 40 }) else {
                throw PilotError.invalidArgument("\(path): tensor '\(name)' has an impossible shape \(shape)\(fix)")
            }
            var count = 1
            for d in shape { let (p, o) = count.multipliedReportingOverflow(by: d); guard !o, p < 1 << 40 else { throw PilotError.invalidArgument("\(path): tensor '\(name)' shape \(shape) is too large\(fix)") }; count = p }
            let elem = dtype == .f32 ? 4 : 2
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
        tensorInfos = entries.map(\.0)
        var r: [String: Range<Int>] = [:], ix: [String: Int] = [:]
        for (i, e) in entries.enumerated() { r[e.0.name] = e.1; ix[e.0.name] = i }
        ranges = r
        index = ix
    }

    public func info(_ name: String) -> TensorInfo? { index[name].map { tensorInfos[$0] } }

    public func readFloat32(_ name: String, into out: UnsafeMutableBufferPointer<Float>) throws {
        guard let i = index[name], let range = ranges[name] else { throw PilotError.notFound(file: path, object: name) }
        let info = tensorInfos[i]
        guard out.count == info.count else {
            throw PilotError.invalidArgument("\(path): tensor '\(name)' has \(info.count) elements, the destination \(out.count)")
        }
        let src = UnsafeRawBufferPointer(rebasing: file.bytes[(dataStart + range.lowerBound)..<(dataStart + range.upperBound)])
        guard [.f32, .f16, .bf16].contains(info.dtype) else {
            throw PilotError.invalidArgument("\(path): tensor '\(name)': dtype \(info.dtype.rawValue) is not a safetensors dtype")
        }
        try Dequantize.run(info.dtype, src, into: out, what: "\(path): tensor '\(name)'")
        file.release(src)
    }
}
