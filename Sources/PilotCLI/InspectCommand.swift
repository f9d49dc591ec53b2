import ArgumentParser
import Foundation
import PilotCore
import PilotFederation
import PilotHDF5
import PilotJob

/// `pilot inspect`: the tree of any HDF5 file (checkpoints, metrics, shards, or files from other
/// tools), with per-dataset type, shape, L2 norm and checksum status.
struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Print the tree of an HDF5 file with dtypes, shapes, norms and checksum status.",
        discussion: """
        Every dataset is listed with its element type, shape, the L2 norm of float data and the \
        status of its SHA-256 attribute: ok, MISMATCH (the bytes changed since pilot wrote them) or \
        none (no checksum, e.g. a file from h5py). Root attributes follow (long strings truncated). \
        Exits 1 if any checksum mismatches or an external link (a round checkpoint's client file) \
        cannot be opened; a round checkpoint's client files are also checked whole against the \
        SHA-256 the round recorded (client_files_sha256), as --resume does. With --verify only those problems and a summary are printed.
        """)

    @Argument(help: "HDF5 file to inspect.")
    var file: String
    @Flag(help: "Only verify checksums: print mismatches and a one-line summary.")
    var verify = false
    @Option(help: "Also print the first N values of every dataset.")
    var values: Int = 0
    @Option(name: .customLong("max-attribute-chars"), help: "Truncate string attributes longer than this.")
    var maxAttributeChars: Int = 160

    func validate() throws {
        guard values >= 0 else { throw ValidationError("--values must be ≥ 0") }
        guard maxAttributeChars >= 8 else { throw ValidationError("--max-attribute-chars must be at least 8") }
    }

    func run() throws {
        let f = try H5File.open(file, checksums: .skip)
        defer { f.close() }
        var counts = (ok: 0, mismatch: 0, none: 0, unchecked: 0)
        var broken: [String] = []
        var lines: [String] = []

        func walk(_ group: String, depth: Int) throws {
            for child in try f.children(of: group) {
                let path = group == "/" ? "/" + child : group + "/" + child
                let indent = String(repeating: "  ", count: depth)
                if f.isGroup(path) {
                    if !verify { lines.append("\(indent)\(child)/") }
                    try walk(path, depth: depth + 1)
                    continue
                }
                guard f.isDataset(path) else {
                    // an external link (a round file's /clients/<k>) whose target cannot be opened: the client
                    // file is missing, truncated or unreadable, and its datasets were not checked
                    if let target = f.externalLinkTarget(path) {
                        broken.append(path)
                        lines.append("\(verify ? path : indent + child)  BROKEN external link to \(target.file):\(target.object) (missing, truncated or unreadable; its datasets are not checked)")
                    } else if !verify {
                        lines.append("\(indent)\(child)  (link or other object)")
                    }
                    continue
                }
                let status = checksumStatus(f, path)
                switch status {
                case "ok": counts.ok += 1
                case "MISMATCH": counts.mismatch += 1
                case "none": counts.none += 1
                default: counts.unchecked += 1
                }
                if verify {
                    if status != "ok" && status != "none" { lines.append("\(path)  sha256 \(status)") }
                    continue
                }
                var line = "\(indent)\(child)"
                var shown: [String] = []
                if let info = try? f.info(of: path) {
                    line += "  \(info.typeName) [\(info.shape.map(String.init).joined(separator: ", "))]"
                    let (norm, first) = readValues(f, path, info)
                    if let norm { line += String(format: "  norm %.6g", norm) }
                    shown = first
                } else {
                    line += "  (unreadable type)"
                }
                line += "  sha256 \(status)"
                lines.append(line)
                if values > 0 && !shown.isEmpty { lines.append("\(indent)  = [\(shown.joined(separator: ", "))\(shown.count == values ? ", …" : "")]") }
            }
        }
        try walk("/", depth: 1)

        if verify {
            for l in lines { Console.out(l) }
        } else {
            Console.out("\(file)")
            Console.out("/")
            for l in lines { Console.out(l) }
            let names = try f.attributeNames(at: "/")
            if !names.isEmpty {
                Console.out("root attributes:")
                for n in names {
                    let text: String
                    do { text = try f.attribute(n, at: "/").map { render($0) } ?? "(absent)" } catch { text = "(unreadable: \(error))" }
                    Console.out("  \(n) = \(text)")
                }
            }
        }
        Console.out("checksums: \(counts.ok) ok, \(counts.mismatch) MISMATCH, \(counts.none) none\(counts.unchecked > 0 ? ", \(counts.unchecked) unchecked" : "")"
                    + (broken.isEmpty ? "" : "; \(broken.count) BROKEN external link(s)"))
        if counts.mismatch > 0 {
            Console.error("pilot inspect: \(counts.mismatch) dataset(s) in '\(file)' do not match their stored SHA-256; the file is corrupt")
        }
        if !broken.isEmpty {
            Console.error("pilot inspect: \(broken.count) external link(s) in '\(file)' lead to files that cannot be opened (\(broken.prefix(5).joined(separator: ", "))\(broken.count > 5 ? ", …" : "")); the checkpoint is incomplete")
        }
        // a round checkpoint also covers its root attributes with one SHA-256
        let attributesChanged = (try? RoundCheckpoint.attributesIntact(f)) == .some(false)
        if attributesChanged {
            Console.out("root attributes: MISMATCH (attributes_sha256)")
            Console.error("pilot inspect: the root attributes of '\(file)' changed since pilot wrote them (attributes_sha256); the file is corrupt or was edited")
        }
        // and each client file as a whole, by the SHA-256 the round file recorded (what --resume checks):
        // an edited attribute of a client file changes no dataset checksum
        let clientFiles = (try? RoundCheckpoint.clientFileMismatches(f, path: file)) ?? []
        for m in clientFiles {
            Console.out("\(m.file)  sha256 MISMATCH (whole file; \((file as NSString).lastPathComponent) recorded \(m.expected.prefix(12))…, the file is \(m.actual.prefix(12))…)")
        }
        if !clientFiles.isEmpty {
            Console.error("pilot inspect: \(clientFiles.count) client file(s) of '\(file)' changed since the round was committed (client_files_sha256): \(clientFiles.prefix(5).map(\.file).joined(separator: ", "))\(clientFiles.count > 5 ? ", …" : ""); --resume refuses them. Restore them, or resume from an earlier round by writing its name into ckpt/latest")
        }
        if counts.mismatch > 0 || !broken.isEmpty || attributesChanged || !clientFiles.isEmpty { throw ExitCode(1) }
    }

    /// ok / MISMATCH / none, or a short reason why it could not be checked.
    func checksumStatus(_ f: H5File, _ path: String) -> String {
        do {
            switch try f.checksumStatus(of: path) {
            case .some(true): return "ok"
            case .some(false): return "MISMATCH"
            case .none:
                return (try? f.attribute(H5File.checksumAttribute, at: path)) == nil ? "none" : "unchecked (type not verifiable)"
            }
        } catch {
            return "unchecked (\(error))"
        }
    }

    /// L2 norm of float data and the first `values` values, as text (nil norm for non-float data).
    func readValues(_ f: H5File, _ path: String, _ info: H5DatasetInfo) -> (Double?, [String]) {
        func norm<T: BinaryFloatingPoint>(_ v: [T]) -> Double { v.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot() }
        let n = values
        switch info.typeName {
        case "float32":
            guard let a = try? f.read(Float.self, at: path) else { return (nil, []) }
            return (norm(a.values), a.values.prefix(n).map { String(format: "%.6g", Double($0)) })
        case "float64":
            guard let a = try? f.read(Double.self, at: path) else { return (nil, []) }
            return (norm(a.values), a.values.prefix(n).map { String(format: "%.9g", $0) })
        case "int64" where n > 0:
            return (nil, ((try? f.read(Int64.self, at: path).values) ?? []).prefix(n).map { "\($0)" })
        case "int32" where n > 0:
            return (nil, ((try? f.read(Int32.self, at: path).values) ?? []).prefix(n).map { "\($0)" })
        case "uint8" where n > 0:
            return (nil, ((try? f.read(UInt8.self, at: path).values) ?? []).prefix(n).map { "\($0)" })
        case "string" where n > 0:
            return (nil, ((try? f.readStrings(at: path)) ?? []).prefix(n).map { quote(truncate($0, 60)) })
        default:
            return (nil, [])
        }
    }

    func render(_ v: H5AttributeValue) -> String {
        switch v {
        case .string(let s): return quote(truncate(s, maxAttributeChars))
        case .strings(let a): return "[" + a.prefix(8).map { quote(truncate($0, 40)) }.joined(separator: ", ") + (a.count > 8 ? ", … (\(a.count))" : "") + "]"
        case .ints(let a): return "[" + a.prefix(16).map(String.init).joined(separator: ", ") + (a.count > 16 ? ", … (\(a.count))" : "") + "]"
        case .doubles(let a): return "[" + a.prefix(16).map { "\($0)" }.joined(separator: ", ") + (a.count > 16 ? ", … (\(a.count))" : "") + "]"
        default: return v.description
        }
    }

    func truncate(_ s: String, _ max: Int) -> String {
        let flat = s.replacingOccurrences(of: "\n", with: "\\n")
        return flat.count <= max ? flat : String(flat.prefix(max)) + "… (\(s.count) chars)"
    }

    func quote(_ s: String) -> String { "\"" + s + "\"" }
}
