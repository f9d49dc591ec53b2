import Foundation
import PilotTestSupport
import PilotCore
import PilotLM
import Testing

/// Shared by SafetensorsTests, GGUFTests and DequantizeTests: fixture loading, and the text of the
/// PilotError a bad file gets (nil when nothing was thrown, a marker when something else was).
enum FormatFixtures {
    static let dir = LMFixtures.path("formats")
    static func path(_ name: String) -> String { dir + "/" + name }

    static func json(_ name: String) throws -> [String: Any] {
        let data = try Data(contentsOf: URL(fileURLWithPath: path(name)))
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    static func bytes(_ name: String) throws -> [UInt8] { [UInt8](try Data(contentsOf: URL(fileURLWithPath: path(name)))) }

    /// Reads every element of `name` as Float32 bit patterns.
    static func bits(_ src: TensorSource, _ name: String) throws -> [UInt32] {
        let info = try #require(src.info(name))
        var out = [Float](repeating: .nan, count: info.count)
        try out.withUnsafeMutableBufferPointer { try src.readFloat32(name, into: $0) }
        return out.map(\.bitPattern)
    }

    static func u32s(_ any: Any?) -> [UInt32] { ((any as? [NSNumber]) ?? []).map(\.uint32Value) }
    static func ints(_ any: Any?) -> [Int] { ((any as? [NSNumber]) ?? []).map(\.intValue) }
}

/// The description of the PilotError `body` throws; nil if it returns.
func thrownText(_ body: () throws -> Any) -> String? {
    do { _ = try body(); return nil } catch let e as PilotError { return e.description } catch { return "not a PilotError: \(error)" }
}

func write(_ bytes: [UInt8], to path: String) throws { try Data(bytes).write(to: URL(fileURLWithPath: path)) }

func putLE<T: FixedWidthInteger>(_ v: T, into bytes: inout [UInt8], at offset: Int) {
    withUnsafeBytes(of: v.littleEndian) { for (i, b) in $0.enumerated() { bytes[offset + i] = b } }
}

func getLE<T: FixedWidthInteger>(_: T.Type, _ bytes: [UInt8], at offset: Int) -> T {
    var v: T = 0
    for i in 0..<MemoryLayout<T>.size { v |= T(bytes[offset + i]) << (8 * i) }
    return v
}

/// The offset of the first occurrence of `needle` in `haystack`.
func find(_ needle: String, in haystack: [UInt8]) -> Int? {
    let n = Array(needle.utf8)
    guard n.count <= haystack.count else { return nil }
    for i in 0...(haystack.count - n.count) where haystack[i] == n[0] && Array(haystack[i..<(i + n.count)]) == n { return i }
    return nil
}
