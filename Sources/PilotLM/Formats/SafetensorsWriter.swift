import Foundation
import PilotCore

/// Writes an F32 safetensors file one tensor at a time, so a model is never held twice: the header
/// first (tensors in the given order, keys sorted as the safetensors library writes them, padded with
/// spaces to a multiple of 8 bytes), then each tensor's bytes as `fill` produces them. The file is
/// written under a temporary name beside `path` and renamed at the end; on error it is removed.
public enum SafetensorsWriter {
    public static func write(path: String, tensors: [TensorInfo], metadata: [String: String] = [:],
                             fill: (TensorInfo, UnsafeMutableBufferPointer<Float>) throws -> Void) throws {
        var header: [String: Any] = [:]
        var offset = 0
        for t in tensors {
            precondition(t.dtype == .f32, "SafetensorsWriter writes F32 only")
            header[t.name] = ["dtype": "F32", "shape": t.shape, "data_offsets": [offset, offset + 4 * t.count]]
            offset += 4 * t.count
        }
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys, .withoutEscapingSlashes])
        while json.count % 8 != 0 { json.append(0x20) }

        let tmp = path + ".tmp-\(getpid())"
        guard FileManager.default.createFile(atPath: tmp, contents: nil), let h = FileHandle(forWritingAtPath: tmp) else {
            throw PilotError.message("cannot create '\(tmp)': check that the directory exists and is writable")
        }
        do {
            var len = UInt64(json.count).littleEndian
            try h.write(contentsOf: Data(bytes: &len, count: 8))
            try h.write(contentsOf: json)
            let largest = tensors.map(\.count).max() ?? 0
            let buf = UnsafeMutableBufferPointer<Float>.allocate(capacity: max(largest, 1))
            defer { buf.deallocate() }
            for t in tensors {
                let view = UnsafeMutableBufferPointer(rebasing: buf[0..<t.count])
                try fill(t, view)
                try h.write(contentsOf: Data(bytesNoCopy: view.baseAddress!, count: 4 * t.count, deallocator: .none))
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
