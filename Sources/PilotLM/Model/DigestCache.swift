#if canImport(Glibc)
import Glibc
#endif
import Foundation
import PilotCore

/// SHA-256 digests of big files remembered by what `stat` says of them (device, inode, size, modification
/// time in nanoseconds), as git's index does, in a small JSON file beside them
/// (`<directory>/.pilot-cache/sha256.json`). A 7B LM is 13.5 GB in bf16: hashing it on every rank of every job
/// costs minutes; with the cache, a file is hashed again only when it was written, replaced or touched since.
/// What it guards against is accidents (a re-import, a copy, a partial download), not an adversary who
/// rewrites a file and resets its time. Writing the cache is best effort: on a read-only directory every
/// digest is computed, as before. Like git's "racily clean" rule, a file modified in the last few seconds
/// (file times are only as fine as the kernel's tick) is never remembered, and nor is a small file (under
/// `minimumBytes`), which is cheap to hash anyway.
public enum DigestCache {
    static let fileName = "sha256.json"
    /// Files smaller than this are always hashed.
    public static let minimumBytes = 64 << 20
    /// Files modified less than this many seconds ago are hashed and not remembered.
    static let settleSeconds = 3

    /// The file's identity as `stat` gives it, and whether it may be remembered; nil when it cannot be stat'ed.
    static func identity(_ path: String) -> (id: String, cacheable: Bool)? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        let settled = Int(time(nil)) - Int(st.st_mtim.tv_sec) >= settleSeconds
        return ("\(st.st_dev):\(st.st_ino):\(st.st_size):\(st.st_mtim.tv_sec).\(st.st_mtim.tv_nsec)",
                settled && Int(st.st_size) >= minimumBytes)
    }

    /// The digest of `path` (what `compute` returns; `kind` tells digests of one file apart, e.g. "file" or
    /// "payload"), from `cacheDirectory`'s cache when the file is unchanged since, else computed and remembered.
    public static func digest(of path: String, kind: String = "file", cacheDirectory: String,
                              compute: () throws -> String) throws -> String {
        guard let ident = identity(path), ident.cacheable else { return try compute() }
        let id = ident.id
        let key = "\(kind) \(URL(fileURLWithPath: path).standardizedFileURL.path)"
        let cachePath = cacheDirectory + "/" + fileName
        var entries = (try? JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: cachePath)))) as? [String: [String: String]] ?? [:]
        if let e = entries[key], e["stat"] == id, let d = e["sha256"], d.count == 64 { return d }
        let digest = try compute()
        // the file must not have changed while it was read, or the digest belongs to no version of it
        guard identity(path)?.id == id else { return digest }
        entries[key] = ["stat": id, "sha256": digest]
        if (try? FileManager.default.createDirectory(atPath: cacheDirectory, withIntermediateDirectories: true)) != nil,
           let data = try? JSONSerialization.data(withJSONObject: entries, options: [.sortedKeys]) {
            try? data.write(to: URL(fileURLWithPath: cachePath), options: .atomic)
        }
        return digest
    }
}
