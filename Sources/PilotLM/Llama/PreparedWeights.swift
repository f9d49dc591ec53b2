#if canImport(Glibc)
import Glibc
#endif
import Foundation
import PilotCore
import PilotTensor

/// One node's copy of a frozen LM: `LlamaWeights`' storage written once into a file (every tensor of
/// `LlamaWeights.table`, back to back, in the base's dtype), which every rank of the node maps
/// read-only. The kernel keeps one copy of a mapped file's pages in its page cache, whichever processes
/// map it, so N ranks hold the frozen LM once: PSS (each shared page divided among its mappers) shows
/// it, RSS counts it N times (docs/models.md "One frozen base per node").
///
///     bytes 0..<4096   "PILOTW01", the JSON header's length (UInt64, little-endian), the JSON header:
///                      format, format_version, dtype, source_sha256 (the model directory's content hash),
///                      table_sha256 (names and shapes of the table), values, bytes, payload_sha256
///     bytes 4096...    `LlamaWeights.bytes`: every tensor in table order, the matrices in the dtype (bf16,
///                      or Q8_0's 34-byte blocks along each row), norms and biases in Float32, little-endian,
///                      each at a multiple of its element size (`LlamaWeights.layout`)
///
/// The file is written beside nothing it could be confused with (`<cache>/<source sha>-<dtype>.pilotw`),
/// to a temporary name first and renamed, so a killed writer leaves no half file; a file whose header
/// or payload digest does not match is rebuilt, and the rebuild is reported.
public enum PreparedWeights {
    static let magic = Array("PILOTW01".utf8)
    static let headerBytes = 4096
    public static let fileExtension = "pilotw"

    /// Where the prepared copy of the model with content hash `sourceSHA256` lives in `cacheDirectory`.
    public static func path(cacheDirectory: String, sourceSHA256: String, dtype: BaseDType = .f32) -> String {
        cacheDirectory + "/" + String(sourceSHA256.prefix(16)) + "-" + dtype.rawValue + "." + fileExtension
    }

    /// The header a prepared file of `config` from `sourceSHA256` must have (payload digest aside).
    static func expectedHeader(config: LlamaConfig, sourceSHA256: String, dtype: BaseDType) -> [String: String] {
        var table = SHA256()
        for e in LlamaWeights.table(config) { table.update(Array("\(e.name) \(e.shape)\n".utf8)) }
        let values = LlamaWeights.table(config).reduce(0) { $0 + $1.count }
        return ["format": "pilot-prepared-weights", "format_version": "2", "dtype": dtype.rawValue, "source_sha256": sourceSHA256,
                "table_sha256": hexDigits(table.finalize()), "values": String(values),
                "bytes": String(LlamaWeights.layout(config, dtype: dtype).total)]
    }

    /// Makes sure `path` holds the prepared weights of `source` (rewriting it when it is missing, stale or
    /// damaged). Returns what it did: "reused", "built" or "rebuilt (why)". Run by one rank per node.
    @discardableResult
    public static func prepare(path: String, config: LlamaConfig, source: TensorSource, sourceSHA256: String,
                               dtype: BaseDType = .f32, progress: (String) -> Void = { _ in }) throws -> String {
        let expected = expectedHeader(config: config, sourceSHA256: sourceSHA256, dtype: dtype)
        var why: String? = nil
        if FileManager.default.fileExists(atPath: path) {
            do { try verify(path: path, expected: expected, payload: true); return "reused" } catch { why = "\(error)" }
            progress("prepared weights \(path): \(why!); rebuilding")
        }
        try LlamaWeights.check(config, against: source)
        let dir = (path as NSString).deletingLastPathComponent
        do { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) } catch {
            throw PilotError.message("cannot create the weights cache '\(dir)': \(error.localizedDescription); set model.weights_cache to a writable node-local directory")
        }
        let tmp = dir + "/." + (path as NSString).lastPathComponent + ".tmp-\(getpid())"
        guard let f = fopen(tmp, "wb") else {
            throw PilotError.message("cannot write '\(tmp)': \(String(cString: strerror(errno))); set model.weights_cache to a writable node-local directory")
        }
        var ok = false
        defer { if !ok { fclose(f); unlink(tmp) } }
        func put(_ p: UnsafeRawPointer, _ n: Int) throws {
            guard fwrite(p, 1, n, f) == n else {
                throw PilotError.message("cannot write '\(tmp)': \(String(cString: strerror(errno))); check the disk has room (model.weights_cache)")
            }
        }
        let zeros = [UInt8](repeating: 0, count: headerBytes)
        try zeros.withUnsafeBytes { try put($0.baseAddress!, headerBytes) }
        var digest = SHA256()
        let table = LlamaWeights.table(config), (offsets, total) = LlamaWeights.layout(config, dtype: dtype)
        var written = 0
        for (i, e) in table.enumerated() {
            let stored = LlamaWeights.storedDType(e, base: dtype)
            let n = (i + 1 < offsets.count ? offsets[i + 1] : total) - offsets[i]   // the tensor and the padding after it
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(n, 1), alignment: 64)
            defer { buffer.deallocate() }
            buffer.initializeMemory(as: UInt8.self, repeating: 0)
            let size = LlamaWeights.byteCount(e, base: dtype)
            try source.readEncoded(e.name, as: stored, into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<size]))
            let chunk = UnsafeRawBufferPointer(rebasing: buffer[0..<n])
            digest.update(chunk)
            try put(chunk.baseAddress!, n)
            written += n
            if i % 32 == 31 { progress("prepared weights: \(i + 1)/\(table.count) tensors") }
        }
        precondition(written == total, "PreparedWeights: wrote \(written) bytes of \(total)")
        var header = expected
        header["payload_sha256"] = hexDigits(digest.finalize())
        let json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        guard magic.count + 8 + json.count <= headerBytes else { throw PilotError.message("prepared weights: header too long") }
        var head = magic
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { head += $0 }
        head += json
        guard fseek(f, 0, SEEK_SET) == 0 else { throw PilotError.message("cannot seek in '\(tmp)'") }
        try head.withUnsafeBytes { try put($0.baseAddress!, head.count) }
        guard fflush(f) == 0, fsync(fileno(f)) == 0 else {
            throw PilotError.message("cannot write '\(tmp)': \(String(cString: strerror(errno))); check the disk has room (model.weights_cache)")
        }
        fclose(f)
        guard rename(tmp, path) == 0 else {
            unlink(tmp)
            throw PilotError.message("cannot rename '\(tmp)' to '\(path)': \(String(cString: strerror(errno)))")
        }
        ok = true
        return why.map { "rebuilt (\($0))" } ?? "built"
    }

    /// Reads the header of `path` and checks it against `expected` (and, with `payload`, the values'
    /// SHA-256 against the header's); throws naming what differs.
    static func verify(path: String, expected: [String: String], payload: Bool) throws {
        let file = try MappedFile(path: path)
        let header = try readHeader(file)
        for (k, v) in expected where header[k] != v {
            throw PilotError.message("its \(k) is \(header[k] ?? "missing"), not \(v)")
        }
        let bytes = Int(expected["bytes"]!)!
        guard file.count == headerBytes + bytes else {
            throw PilotError.message("it has \(file.count) bytes, not \(headerBytes + bytes) (a truncated file)")
        }
        if payload {
            let dir = (path as NSString).deletingLastPathComponent
            let digest = try DigestCache.digest(of: path, kind: "payload", cacheDirectory: dir) {
                SHA256.hex(UnsafeRawBufferPointer(rebasing: file.bytes[headerBytes...]))
            }
            guard digest == header["payload_sha256"] else { throw PilotError.message("its values do not match their SHA-256 (a damaged file)") }
        }
    }

    static func hexDigits(_ digest: [UInt8]) -> String { digest.map { String(format: "%02x", $0) }.joined() }

    static func readHeader(_ file: MappedFile) throws -> [String: String] {
        guard file.count >= headerBytes, Array(file.bytes[0..<8]) == magic else {
            throw PilotError.message("it is not a prepared weights file (no PILOTW01 header)")
        }
        let n = Int(UInt64(littleEndian: file.bytes.loadUnaligned(fromByteOffset: 8, as: UInt64.self)))
        guard n > 0, 16 + n <= headerBytes,
              let object = try? JSONSerialization.jsonObject(with: Data(file.bytes[16..<(16 + n)])) as? [String: String] else {
            throw PilotError.message("its header is not readable")
        }
        return object
    }

    /// The weights in the prepared file `path`, mapped read-only: every rank of a node that maps it shares
    /// one copy. Checks the header (not the payload digest: the rank that prepared it checked that).
    public static func map(path: String, config: LlamaConfig, sourceSHA256: String, dtype: BaseDType = .f32) throws -> LlamaWeights {
        do { try verify(path: path, expected: expectedHeader(config: config, sourceSHA256: sourceSHA256, dtype: dtype), payload: false) } catch {
            throw PilotError.message("prepared weights '\(path)': \(error); delete it and rerun (one rank per node rebuilds it)")
        }
        let file = try MappedFile(path: path)
        let start = UnsafeMutableRawPointer(mutating: file.bytes.baseAddress! + headerBytes)
        return LlamaWeights(config: config, dtype: dtype, mapped: UnsafeMutableRawBufferPointer(start: start, count: file.count - headerBytes), owner: file)
    }
}
