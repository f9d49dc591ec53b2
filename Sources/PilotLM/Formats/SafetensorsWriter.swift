import Foundation
import PilotCore

/// Writes a safetensors file (F32, BF16, F16 or I8 tensors) one tensor at a time, so a model is never held twice. The layout is
/// the safetensors library's own (`safetensors.numpy.save_file` writes the same bytes): tensors sorted by
/// name, the header `{"__metadata__":{…},"name":{"dtype":"F32","shape":[…],"data_offsets":[b,e]},…}` in that
/// order, padded with spaces to a multiple of 8 bytes, then each tensor's bytes as `fill` produces them
/// (called in name order). The file is written under a temporary name beside `path` and renamed at the
/// end; on error the temporary file is removed, so no half-written file is left.
public enum SafetensorsWriter {
    /// An F32 file: `fill` gives each tensor's values.
    public static func write(path: String, tensors unsorted: [TensorInfo], metadata: [String: String] = [:],
                             fill: (TensorInfo, UnsafeMutableBufferPointer<Float>) throws -> Void) throws {
        if let t = unsorted.first(where: { $0.dtype != .f32 }) {
            throw PilotError.invalidArgument("\(path): tensor '\(t.name)' is \(t.dtype.rawValue); write(…, fill:) writes F32 only (use writeBytes)")
        }
        try writeBytes(path: path, tensors: unsorted, metadata: metadata) { t, raw in try fill(t, raw.bindMemory(to: Float.self)) }
    }

    /// Bytes per element of the dtypes this writer writes.
    static func elementBytes(_ t: TensorDType) -> Int? {
        switch t {
        case .f32: 4
        case .bf16, .f16: 2
        case .i8: 1
        default: nil
        }
    }

    /// Any of F32, BF16, F16 and I8: `fill` gives each tensor's stored bytes (little-endian).
    public static func writeBytes(path: String, tensors unsorted: [TensorInfo], metadata: [String: String] = [:],
                                  fill: (TensorInfo, UnsafeMutableRawBufferPointer) throws -> Void) throws {
        let tensors = unsorted.sorted { $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) }
        for (a, b) in zip(tensors, tensors.dropFirst()) where a.name == b.name {
            throw PilotError.invalidArgument("\(path): tensor '\(a.name)' is listed twice")
        }
        if let t = tensors.first(where: { elementBytes($0.dtype) == nil }) {
            throw PilotError.invalidArgument("\(path): tensor '\(t.name)' is \(t.dtype.rawValue); SafetensorsWriter writes F32, BF16, F16 and I8")
        }
        func quoted(_ s: String) throws -> String {  // a JSON string literal, escaped as JSONSerialization does
            let d = try JSONSerialization.data(withJSONObject: [s], options: [.withoutEscapingSlashes])
            return String(decoding: d.dropFirst().dropLast(), as: UTF8.self)
        }
        var parts: [String] = []
        if !metadata.isEmpty {
            let kv = try metadata.sorted { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }.map { "\(try quoted($0.key)):\(try quoted($0.value))" }
            parts.append("\"__metadata__\":{\(kv.joined(separator: ","))}")
        }
        var offset = 0
        for t in tensors {
            let shape = t.shape.map(String.init).joined(separator: ",")
            let n = elementBytes(t.dtype)! * t.count
            parts.append("\(try quoted(t.name)):{\"dtype\":\"\(t.dtype.rawValue)\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(offset + n)]}")
            offset += n
        }
        var json = Data("{\(parts.joined(separator: ","))}".utf8)
        while json.count % 8 != 0 { json.append(0x20) }

        let tmp = path + ".tmp-\(getpid())"
        guard FileManager.default.createFile(atPath: tmp, contents: nil), let h = FileHandle(forWritingAtPath: tmp) else {
            throw PilotError.message("cannot create '\(tmp)': check that the directory exists and is writable")
        }
        do {
            var len = UInt64(json.count).littleEndian
            try h.write(contentsOf: Data(bytes: &len, count: 8))
            try h.write(contentsOf: json)
            let largest = tensors.map { elementBytes($0.dtype)! * $0.count }.max() ?? 0
            let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: max(largest, 1), alignment: 64)
            defer { buf.deallocate() }
            for t in tensors {
                let n = elementBytes(t.dtype)! * t.count
                let view = UnsafeMutableRawBufferPointer(rebasing: buf[0..<n])
                try fill(t, view)
                if let p = view.baseAddress, n > 0 { try h.write(contentsOf: Data(bytesNoCopy: p, count: n, deallocator: .none)) }
            }
            try h.synchronize()
            try h.close()
        } catch {
            try? h.close()
            unlink(tmp)
            if let e = error as? PilotError { throw e }
            throw PilotError.message("cannot write '\(path)': \(error.localizedDescription); check the disk has room")
        }
        if rename(tmp, path) != 0 {
            unlink(tmp)
            throw PilotError.message("cannot rename '\(tmp)' to '\(path)': \(String(cString: strerror(errno)))")
        }
    }
}
