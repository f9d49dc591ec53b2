import PilotHDF5

/// What a vision-feature cache's rows depend on, stored as the cache file's root attributes: the tower's
/// files and feature layer, the shard's images and which of its rows, and the BLAS kernel that computed
/// them. A cache whose key differs from the run's in anything is stale and is rebuilt; `changes` says why.
struct VisionFeatureKey: Equatable, Sendable {
    static let format = "pilot-vision-features"
    /// Bump when the features a tower gives for the same files change (pixel mapping, tower code).
    static let formatVersion: Int64 = 1

    /// `FrozenVisionTower.sha256`: SHA-256 of the tower's directory (config, weights, preprocessor).
    var tower: String
    /// LLaVA's `vision_feature_layer` the rows are taken from.
    var featureLayer: Int
    /// SHA-256 of the shard's `/images` dataset (every image's bytes, in row order), as the shard stores it.
    var images: String
    /// The shard's rows the cache holds: `first ..< first + count` (a test split may be evaluated in part).
    var first: Int
    var count: Int
    /// Visual tokens P and width Dv of a row.
    var tokens: Int
    var width: Int
    /// OpenBLAS's kernel: another kernel rounds the tower's products differently.
    var blasCore: String

    func write(to f: H5File) throws {
        try f.setAttribute("format", .string(Self.format))
        try f.setAttribute("format_version", .int(Self.formatVersion))
        try f.setAttribute("tower_sha256", .string(tower))
        try f.setAttribute("feature_layer", .int(Int64(featureLayer)))
        try f.setAttribute("images_sha256", .string(images))
        try f.setAttribute("first_row", .int(Int64(first)))
        try f.setAttribute("rows", .int(Int64(count)))
        try f.setAttribute("tokens", .int(Int64(tokens)))
        try f.setAttribute("width", .int(Int64(width)))
        try f.setAttribute("blas_core", .string(blasCore))
    }

    /// The key a cache file records, or why it records none a reader can use.
    static func read(from f: H5File) throws -> Result<VisionFeatureKey, Stale> {
        guard try f.attribute("format")?.stringValue == format else { return .failure(.notACache) }
        let version = try f.attribute("format_version")?.intValue ?? -1
        guard version == formatVersion else { return .failure(.version(Int(version))) }
        func string(_ k: String) throws -> String? { try f.attribute(k)?.stringValue }
        func int(_ k: String) throws -> Int? { try f.attribute(k)?.intValue.map { Int($0) } }
        guard let tower = try string("tower_sha256"), let layer = try int("feature_layer"), let images = try string("images_sha256"),
              let first = try int("first_row"), let count = try int("rows"), let tokens = try int("tokens"),
              let width = try int("width"), let core = try string("blas_core") else { return .failure(.notACache) }
        return .success(VisionFeatureKey(tower: tower, featureLayer: layer, images: images, first: first, count: count,
                                         tokens: tokens, width: width, blasCore: core))
    }

    /// What differs between a stored key and the run's (`self`), in words; empty when the cache is valid.
    func changes(from stored: VisionFeatureKey) -> [String] {
        var out: [String] = []
        if stored.tower != tower { out.append("tower changed (\(stored.tower.prefix(12))… → \(tower.prefix(12))…)") }
        if stored.featureLayer != featureLayer { out.append("feature layer changed (\(stored.featureLayer) → \(featureLayer))") }
        if stored.images != images { out.append("images changed (shard's /images \(stored.images.prefix(12))… → \(images.prefix(12))…)") }
        if stored.first != first || stored.count != count {
            out.append("rows changed (\(stored.first)..<\(stored.first + stored.count) → \(first)..<\(first + count))")
        }
        if stored.tokens != tokens || stored.width != width {
            out.append("feature shape changed ([\(stored.tokens), \(stored.width)] → [\(tokens), \(width)])")
        }
        if stored.blasCore != blasCore { out.append("OpenBLAS kernel changed (\(stored.blasCore) → \(blasCore))") }
        return out
    }

    /// Why a cache file cannot be used, for the report ("rebuilding: …").
    enum Stale: Error, Equatable, CustomStringConvertible {
        case notACache
        case version(Int)
        case changed([String])
        case damaged(String)

        var description: String {
            switch self {
            case .notACache: return "not a vision-feature cache (no format attributes)"
            case let .version(v): return "format_version \(v), this pilot writes \(VisionFeatureKey.formatVersion)"
            case let .changed(c): return c.joined(separator: ", ")
            case let .damaged(why): return "damaged (\(why))"
            }
        }
    }
}
