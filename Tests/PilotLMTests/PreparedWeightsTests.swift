import Foundation
import PilotCore
import PilotLM
import PilotTestSupport
import Testing

/// One node's shared copy of the frozen LM (#33 item 1): the prepared file holds exactly the values each
/// rank would load for itself, is reused while it matches, and is rebuilt (and says why) when it does not.
@Suite("prepared weights: one node's shared copy of the LM")
struct PreparedWeightsTests {
    static func setUp() throws -> (dir: TemporaryDirectory, model: String, config: LlamaConfig, source: SafetensorsCheckpoint) {
        let dir = TemporaryDirectory("prepared")
        let model = dir.file("model")
        try HostileFixtures.writeModelDirectory(model)
        let config = try LlamaConfig.load(directory: model)
        return (dir, model, config, try SafetensorsCheckpoint(directory: model))
    }

    @Test("mapped values equal a private load bit for bit; a second prepare reuses the file")
    func sameValues() throws {
        let (dir, _, config, source) = try Self.setUp()
        defer { dir.cleanup() }
        let path = PreparedWeights.path(cacheDirectory: dir.file("cache"), sourceSHA256: "ab12")
        #expect(try PreparedWeights.prepare(path: path, config: config, source: source, sourceSHA256: "ab12") == "built")
        let shared = try PreparedWeights.map(path: path, config: config, sourceSHA256: "ab12")
        let own = try LlamaWeights(config: config, source: source)
        #expect(shared.isShared && !own.isShared)
        #expect(Array(shared.bytes) == Array(own.bytes))
        #expect(try PreparedWeights.prepare(path: path, config: config, source: source, sourceSHA256: "ab12") == "reused")
        // no temporary file is left beside it
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.file("cache")) == [(path as NSString).lastPathComponent])
    }

    @Test("a damaged, truncated or stale file is rebuilt, and the rebuild says why; mapping a bad one is refused by name")
    func rebuilt() throws {
        let (dir, _, config, source) = try Self.setUp()
        defer { dir.cleanup() }
        let path = PreparedWeights.path(cacheDirectory: dir.file("cache"), sourceSHA256: "ab12")
        try PreparedWeights.prepare(path: path, config: config, source: source, sourceSHA256: "ab12")
        // one flipped bit in the values
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        bytes[bytes.count - 3] ^= 0x10
        try bytes.write(to: URL(fileURLWithPath: path))
        let damaged = try PreparedWeights.prepare(path: path, config: config, source: source, sourceSHA256: "ab12")
        #expect(damaged.hasPrefix("rebuilt") && damaged.contains("SHA-256"), "\(damaged)")
        // truncated: refused when mapped, rebuilt when prepared
        try Data(bytes.prefix(bytes.count - 100)).write(to: URL(fileURLWithPath: path))
        #expect { _ = try PreparedWeights.map(path: path, config: config, sourceSHA256: "ab12") } throws: { error in
            "\(error)".contains(path) && "\(error)".contains("truncated")
        }
        #expect(try PreparedWeights.prepare(path: path, config: config, source: source, sourceSHA256: "ab12").hasPrefix("rebuilt"))
        // made from another version of the model: its source hash differs
        let stale = try PreparedWeights.prepare(path: path, config: config, source: source, sourceSHA256: "cd34")
        #expect(stale.hasPrefix("rebuilt") && stale.contains("source_sha256"), "\(stale)")
        #expect(throws: PilotError.self) { _ = try PreparedWeights.map(path: path, config: config, sourceSHA256: "ab12") }
        // not a prepared file at all
        try Data("not weights".utf8).write(to: URL(fileURLWithPath: path))
        #expect(try PreparedWeights.prepare(path: path, config: config, source: source, sourceSHA256: "ab12").contains("PILOTW01"))
    }
}
