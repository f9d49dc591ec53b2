import Foundation
import PilotCore
import PilotData
@testable import PilotFederation
import PilotHDF5
import PilotModel
import PilotPretrain
import PilotTestSupport
import Testing

/// The vision-feature cache of a shard (`VisionFeatureCache`) over the tiny transformers CLIP tower
/// `vit-quickgelu` (32 px, 16 patches of width 64): its rows are the tower's in-line bits, and a stale or
/// damaged file is found, said why, and rebuilt. `VisionCacheCLITests` runs it inside `pilot train`.
@Suite("vision-feature cache", .serialized)
struct VisionFeatureCacheTests {
    /// Client 0's shard of the tiny vu scenario (24 examples) written to `dir`, prepared for a model on the tower.
    static func setUp(_ dir: TemporaryDirectory) throws -> (shard: String, prepared: PreparedExamples, tower: FrozenVisionTower) {
        let tower = try FrozenVisionTower(directory: CLIPFixture.path("vit-quickgelu"))
        let shard = dir.file("client-00.h5")
        try tinyScenario.clients[0].write(to: shard)
        let config = tower.apply(to: ModelPreset.micro.config)
        let prepared = try Batcher(config: config, tokenizer: tinyScenario.tokenizer, truncate: true).prepare(try Shard.read(path: shard).examples)
        return (shard, prepared, tower)
    }

    static func ensure(_ s: (shard: String, prepared: PreparedExamples, tower: FrozenVisionTower), lines: inout [String]) throws
        -> (rows: VisionFeatureRows, outcome: VisionFeatureCache.Outcome) {
        var said: [String] = []
        let r = try VisionFeatureCache.ensure(shard: s.shard, first: 0, examples: s.prepared, tower: s.tower, what: "client 0",
                                              progress: { said.append($0) })
        lines += said
        return r
    }

    @Test("the cached rows are the bits the tower computes in-line, for any batch; the cache sits beside the shard")
    func cachedRowsAreTheInlineBits() throws {
        let dir = TemporaryDirectory("vision-cache"); defer { dir.cleanup() }
        let s = try Self.setUp(dir)
        var lines: [String] = []
        let (rows, outcome) = try Self.ensure(s, lines: &lines)
        #expect(outcome == .built)
        #expect(lines.first == "vision features: client 0: building the cache (24 images)…", "\(lines)")
        let path = dir.file("client-00.vision-\(s.tower.sha256.prefix(16)).h5")
        #expect(rows.path == path && FileManager.default.fileExists(atPath: path))
        let cached = try s.prepared.reading(features: rows)
        for idx in [[0], [5, 3, 17, 0], Array(0..<24).reversed(), [23, 23, 1]] {
            guard case let .pixels(px) = try s.prepared.visual(idx) else { Issue.record("expected pixels"); return }
            let inline = try s.tower.features(modelPixels: px, batch: idx.count)
            guard case let .features(f) = try cached.visual(idx) else { Issue.record("expected cached features"); return }
            #expect(f == inline, "batch \(idx): cached and in-line features differ")
        }
        // the training batch carries the features and the same text as the pixel batch
        let a = try s.prepared.batch([4, 9]), b = try cached.batch([4, 9])
        #expect(a.tokens == b.tokens && a.targets == b.targets && a.lengths == b.lengths)
        // a second run finds it valid
        var again: [String] = []
        #expect(try Self.ensure(s, lines: &again).outcome == .reused && again.isEmpty)
    }

    @Test("a changed tower hash, feature layer or image, a damaged row and a file that is not HDF5 are each rebuilt, with the reason")
    func staleCachesAreRebuilt() throws {
        let dir = TemporaryDirectory("vision-cache-stale"); defer { dir.cleanup() }
        var s = try Self.setUp(dir)
        var lines: [String] = []
        let original = try Self.ensure(s, lines: &lines).rows
        let bits = try original.read(0..<24)
        let path = original.path
        let key = try VisionFeatureCache.key(shard: s.shard, first: 0, count: 24, tower: s.tower)

        func expectRebuilt(_ because: String, _ note: String) throws {
            var said: [String] = []
            let (rows, outcome) = try Self.ensure(s, lines: &said)
            guard case let .rebuilt(reason) = outcome else { Issue.record("\(note): \(outcome)"); return }
            #expect(reason.contains(because), "\(note): \(reason)")
            #expect(said.first?.hasPrefix("vision features: client 0: rebuilding the cache (24 images): ") == true && said.first?.contains(because) == true,
                    "\(note): \(said)")
            #expect(try rows.read(0..<24) == bits, "\(note): the rebuilt rows are the tower's bits")
        }

        // a file under the tower's name whose key records another tower (and another feature layer)
        var other = key
        other.tower = String(repeating: "ab", count: 32); other.featureLayer = -1
        try VisionFeatureCache.build(path: path, key: other, examples: s.prepared, tower: s.tower, what: "client 0", progress: { _ in })
        try expectRebuilt("tower changed (abababababab… → \(s.tower.sha256.prefix(12))…), feature layer changed (-1 → -2)", "tower")

        // one flipped byte inside a row's data: its SHA-256 no longer matches
        try flipByte(of: try original.read([3]), in: path)
        try expectRebuilt("damaged (the SHA-256 of /features/00000003 does not match its data)", "flipped byte")

        // a truncated or foreign file
        try Data("not an HDF5 file".utf8).write(to: URL(fileURLWithPath: path))
        try expectRebuilt("damaged (not a readable HDF5 file)", "garbage")

        // one pixel of one image changes in the shard: the images' hash changes, so every row is recomputed
        var shard = try Shard.read(path: s.shard)
        shard.examples[2].image.pixels[7] ^= 0x40
        try shard.write(to: s.shard)
        s.prepared = try Batcher(config: s.prepared.config, tokenizer: tinyScenario.tokenizer, truncate: true).prepare(shard.examples)
        var said: [String] = []
        let (rows, outcome) = try Self.ensure(s, lines: &said)
        guard case let .rebuilt(reason) = outcome else { Issue.record("image: \(outcome)"); return }
        #expect(reason.hasPrefix("images changed (shard's /images \(key.images.prefix(12))… → "), "\(reason)")
        let now = try rows.read(0..<24), per = 16 * 64
        #expect(now[(2 * per)..<(3 * per)] != bits[(2 * per)..<(3 * per)], "the edited image's features change")
        #expect(Array(now[..<(2 * per)]) == Array(bits[..<(2 * per)]) && Array(now[(3 * per)...]) == Array(bits[(3 * per)...]))
    }

    @Test("a cache is refused for other examples than it was built for, and a row out of range is an error")
    func mismatchedUse() throws {
        let dir = TemporaryDirectory("vision-cache-use"); defer { dir.cleanup() }
        let s = try Self.setUp(dir)
        var lines: [String] = []
        let rows = try Self.ensure(s, lines: &lines).rows
        let five = try Batcher(config: s.prepared.config, tokenizer: tinyScenario.tokenizer, truncate: true)
            .prepare(Array(tinyScenario.clients[0].examples.prefix(5)))
        #expect(throws: PilotError.self) { _ = try five.reading(features: rows) }
        #expect(throws: PilotError.self) { _ = try rows.read([24]) }
    }

    /// Flips one bit in the first place of the file where `row`'s bytes are stored.
    func flipByte(of row: [Float], in path: String) throws {
        var file = try Data(contentsOf: URL(fileURLWithPath: path))
        let needle = row.withUnsafeBytes { Data($0.prefix(64)) }
        let at = try #require(file.range(of: needle)?.lowerBound, "row bytes not found in \(path)")
        file[at + 17] ^= 0x01
        try file.write(to: URL(fileURLWithPath: path))
    }
}
