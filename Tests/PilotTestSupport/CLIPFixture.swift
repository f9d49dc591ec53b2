import Foundation
import PilotCore

/// One tiny transformers CLIP tower of Tests/Fixtures/clip/<name>/ (Tests/Fixtures/clip/make_clip_fixture.py) and its outputs.
public struct CLIPFixture: Sendable {
    public static let names = ["vit-quickgelu", "vit-gelu", "clipmodel"]
    public static func path(_ name: String) -> String { repositoryRoot + "/Tests/Fixtures/clip/" + name }

    public let dir: String
    public let batch: Int, patches: Int, hidden: Int
    public let pixels: [Float]            // [B, 3, I, I]
    public let penultimatePatch: [Float]  // hidden_states[-2][:, 1:]
    public let lastClsPatch: [Float]      // hidden_states[-1]
    public let firstPatch: [Float]        // hidden_states[0][:, 1:]

    public init(_ name: String) throws {
        let dir = CLIPFixture.path(name)
        self.dir = dir
        let json = try JSONSerialization.jsonObject(with: try Data(contentsOf: URL(fileURLWithPath: dir + "/expected.json")))
        guard let e = json as? [String: Any], let b = e["batch"] as? Int, let p = e["patches"] as? Int, let c = e["hidden_size"] as? Int else {
            throw PilotError.message("\(dir)/expected.json: unexpected layout")
        }
        func floats(_ key: String) throws -> [Float] {
            guard let s = e[key + "_f32le_base64"] as? String, let d = Data(base64Encoded: s) else {
                throw PilotError.message("\(dir)/expected.json: no \(key)")
            }
            return d.withUnsafeBytes { raw in (0..<(d.count / 4)).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self))) } }
        }
        batch = b; patches = p; hidden = c
        pixels = try floats("pixels")
        penultimatePatch = try floats("penultimate_patch")
        lastClsPatch = try floats("last_cls_patch")
        firstPatch = try floats("first_patch")
    }
}

