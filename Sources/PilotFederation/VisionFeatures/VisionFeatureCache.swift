import Foundation
import PilotCore
import PilotHDF5
import PilotModel
import PilotTensor

/// A shard's cache of the frozen CLIP tower's output (docs/models.md, "Cached vision features"): a file
/// beside the shard, named by the tower's hash, holding the connector's input [P, Dv] for each of the
/// shard's rows that a run uses. It is found valid (same key, every row's SHA-256 checks) and reused, or
/// built from the examples' pixels by the tower itself and committed atomically (temp file + rename), so a
/// killed build leaves no half file. The rows are the tower's own bits: a run that reads them computes
/// exactly what it would compute in-line.
enum VisionFeatureCache {
    /// How a cache was come by, for the report.
    enum Outcome: Sendable, Equatable {
        case reused
        case built
        case rebuilt(reason: String)
    }

    /// Images per call of the tower while building (each image runs alone; this only bounds the buffers).
    static let chunk = 8

    /// `clients/client-03.h5` → `clients/client-03.vision-<first 16 hex digits of the tower's SHA-256>.h5`.
    static func path(shard: String, tower: String) -> String {
        let stem = shard.hasSuffix(".h5") ? String(shard.dropLast(3)) : shard
        return stem + ".vision-" + tower.prefix(16) + ".h5"
    }

    /// The key of rows `first ..< first + count` of the shard at `shard` under `tower`.
    static func key(shard: String, first: Int, count: Int, tower: FrozenVisionTower) throws -> VisionFeatureKey {
        let f = try H5File.open(shard)
        defer { f.close() }
        guard let images = try f.attribute(H5File.checksumAttribute, at: "/images")?.stringValue else {
            throw PilotError.notFound(file: shard, object: "/images attribute sha256 (the shard was not written by pilot); rewrite it with `pilot data import`, or set model.cache_vision_features = false")
        }
        return VisionFeatureKey(tower: tower.sha256, featureLayer: tower.featureLayer, images: images, first: first, count: count,
                                tokens: tower.config.numPatches, width: tower.config.hiddenSize, blasCore: BLASRuntime.coreName)
    }

    /// The valid cache of `examples` (rows `first ..< first + examples.count` of `shard`, prepared with
    /// pixels): reused when it checks, else built, or rebuilt with the reason. `progress` gets a line before
    /// a build and about once a minute during one; `what` names the data in it ("client 3").
    static func ensure(shard: String, first: Int, examples: PreparedExamples, tower: FrozenVisionTower, what: String,
                       progress: (String) -> Void) throws -> (rows: VisionFeatureRows, outcome: Outcome) {
        let key = try key(shard: shard, first: first, count: examples.count, tower: tower)
        let path = path(shard: shard, tower: tower.sha256)
        var outcome = Outcome.built
        if FileManager.default.fileExists(atPath: path) {
            switch VisionFeatureRows.open(path: path, key: key) {
            case let .success(rows): return (rows, .reused)
            case let .failure(why): outcome = .rebuilt(reason: "\(why)")
            }
        }
        if case let .rebuilt(reason) = outcome {
            progress("vision features: \(what): rebuilding the cache (\(examples.count) images): \(reason)…")
        } else {
            progress("vision features: \(what): building the cache (\(examples.count) images)…")
        }
        let t0 = Date()
        try build(path: path, key: key, examples: examples, tower: tower, what: what, progress: progress)
        switch VisionFeatureRows.open(path: path, key: key) {
        case let .success(rows):
            progress(String(format: "vision features: %@: %d images cached in %.2f s → %@", what, examples.count, Date().timeIntervalSince(t0), path))
            return (rows, outcome)
        case let .failure(why):
            throw PilotError.message("vision-feature cache '\(path)' was just written but does not read back (\(why)); check the disk, or set model.cache_vision_features = false")
        }
    }

    /// Runs the tower over every example and commits the file at `path` (atomic).
    static func build(path: String, key: VisionFeatureKey, examples: PreparedExamples, tower: FrozenVisionTower, what: String,
                      progress: (String) -> Void) throws {
        let f: H5File
        do { f = try H5File.create(path) } catch {
            throw PilotError.message("cannot write the vision-feature cache '\(path)' (\(error)); make its directory writable, or set model.cache_vision_features = false to compute the tower's features in every round")
        }
        let per = key.tokens * key.width
        var start = 0, lastReport = Date()
        while start < examples.count {
            let idx = start..<min(start + chunk, examples.count)
            guard case let .pixels(px) = try examples.visual(idx) else {
                throw PilotError.message("vision-feature cache '\(path)': the examples of \(what) have no pixels to build it from")
            }
            let features = try tower.features(modelPixels: px, batch: idx.count)
            for (b, i) in idx.enumerated() {
                try f.write(Array(features[(b * per)..<((b + 1) * per)]), shape: [key.tokens, key.width], at: VisionFeatureRows.rowName(i))
            }
            start = idx.upperBound
            if Date().timeIntervalSince(lastReport) >= 60, start < examples.count {
                progress("vision features: \(what): \(start)/\(examples.count) images")
                lastReport = Date()
            }
        }
        try key.write(to: f)
        try f.commit()
    }
}
