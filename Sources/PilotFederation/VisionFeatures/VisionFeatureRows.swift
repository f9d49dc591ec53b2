import Foundation
import PilotCore
import PilotHDF5

/// The rows of a valid vision-feature cache file: the frozen CLIP tower's output [P, Dv] for each example,
/// one dataset per row (`/features/00000012`, with its SHA-256 like every dataset of the store), read per
/// batch so that a client holds one batch of features in memory, not its whole shard.
///
/// The file stays open from the check that found it valid: a rebuild by another process renames a new
/// file over the path, and this reader keeps reading the one it checked.
public final class VisionFeatureRows: @unchecked Sendable {
    public let path: String
    public let count: Int
    public let tokens: Int
    public let width: Int
    private let file: H5File
    private let lock = NSLock()

    static func rowName(_ i: Int) -> String {
        let s = String(i)
        return "/features/" + String(repeating: "0", count: max(0, 8 - s.count)) + s
    }

    private init(path: String, file: H5File, key: VisionFeatureKey) {
        self.path = path; self.file = file
        count = key.count; tokens = key.tokens; width = key.width
    }

    deinit { file.close() }

    /// Opens the cache at `path` and checks it against the run's `key`: its attributes, then every row's
    /// shape and SHA-256 (each row is read once here). A file that exists but cannot be used says why.
    static func open(path: String, key: VisionFeatureKey) -> Result<VisionFeatureRows, VisionFeatureKey.Stale> {
        let f: H5File
        do { f = try H5File.open(path) } catch {
            return .failure(.damaged("not a readable HDF5 file"))
        }
        let stored: VisionFeatureKey
        do {
            switch try VisionFeatureKey.read(from: f) {
            case let .success(k): stored = k
            case let .failure(why): f.close(); return .failure(why)
            }
        } catch {
            f.close()
            return .failure(.damaged("its attributes cannot be read"))
        }
        let changes = key.changes(from: stored)
        guard changes.isEmpty else { f.close(); return .failure(.changed(changes)) }
        let shape = [key.tokens, key.width]
        for i in 0..<key.count {
            let name = rowName(i)
            do {
                let row = try f.read(Float.self, at: name)
                guard row.shape == shape else { f.close(); return .failure(.damaged("\(name) is \(row.shape), not \(shape)")) }
            } catch PilotError.checksumMismatch {
                f.close()
                return .failure(.damaged("the SHA-256 of \(name) does not match its data"))
            } catch {
                f.close()
                return .failure(.damaged("\(name) cannot be read"))
            }
        }
        return .success(VisionFeatureRows(path: path, file: f, key: key))
    }

    /// Features [B, P, Dv] of the rows at `indices`, in that order (each row's SHA-256 checked again).
    public func read<C: Collection>(_ indices: C) throws -> [Float] where C.Element == Int {
        lock.lock(); defer { lock.unlock() }
        let per = tokens * width
        var out = [Float](repeating: 0, count: indices.count * per)
        for (b, i) in indices.enumerated() {
            guard i >= 0 && i < count else {
                throw PilotError.invalidArgument("vision-feature cache '\(path)': row \(i) asked for; it has rows 0..<\(count)")
            }
            let row: H5Array<Float>
            do { row = try file.read(Float.self, at: Self.rowName(i)) } catch {
                throw PilotError.message("vision-feature cache '\(path)': \(error). It was valid when this run started, so the file was changed during the run; delete it and resume (--resume): the cache is rebuilt, with the same bits")
            }
            guard row.values.count == per else {
                throw PilotError.typeMismatch(file: path, object: Self.rowName(i), expected: "float32 [\(tokens), \(width)]", found: "\(row.shape)")
            }
            row.values.withUnsafeBufferPointer { src in
                out.withUnsafeMutableBufferPointer { dst in (dst.baseAddress! + b * per).update(from: src.baseAddress!, count: per) }
            }
        }
        return out
    }
}
