import Foundation

/// The one error type of the project. Every case names what failed (file, dataset, key,
/// rank, operation or tensor) and its message says what the user can do about it.
/// Only the CLI turns these into exit codes.
public enum PilotError: Error, CustomStringConvertible, Equatable, Sendable {
    /// An MPI call returned an error code. `rank` is the world rank that saw it.
    case mpi(operation: String, rank: Int, code: Int32, message: String)
    /// Another rank failed, so this rank's collective operation cannot complete.
    case aborted(operation: String, rank: Int, cause: String)
    /// An HDF5 call failed. `detail` is HDF5's own error stack.
    case hdf5(operation: String, file: String, object: String, detail: String)
    /// A dataset's bytes do not match the SHA-256 stored when it was written.
    case checksumMismatch(file: String, dataset: String, expected: String, actual: String)
    /// A dataset or attribute has a different element type or shape than the caller asked for.
    case typeMismatch(file: String, object: String, expected: String, found: String)
    /// A file or object is missing.
    case notFound(file: String, object: String)
    /// Arguments that cannot work together (shapes, counts, ranks).
    case invalidArgument(String)
    /// Anything else that names its own context.
    case message(String)

    /// HDF5's error stack ("func(): message; …", outermost first) in a line a user can act on: the
    /// operating system's reason first when the stack carries one (errno), with what to do for a full
    /// disk or a permission problem, then the outermost and innermost HDF5 frames. The whole stack is
    /// kept with PILOT_HDF5_STACK=1 (or PILOT_DEBUG=1) in the environment.
    public static func summarizeHDF5(_ detail: String, file: String) -> String {
        if detail.isEmpty { return "no detail from HDF5" }
        let env = ProcessInfo.processInfo.environment["PILOT_HDF5_STACK"] ?? ProcessInfo.processInfo.environment["PILOT_DEBUG"]
        if let env, env != "", env != "0" { return detail }
        let frames = detail.components(separatedBy: "; ")
        var reason = ""
        if let r = detail.range(of: "errno = "), let end = detail[r.upperBound...].firstIndex(where: { !$0.isNumber }),
           let code = Int(detail[r.upperBound..<end]) {
            var text = ""
            if let m = detail.range(of: "error message = '"), let close = detail[m.upperBound...].firstIndex(of: "'") {
                text = String(detail[m.upperBound..<close])
            }
            reason = "\(text.isEmpty ? "system error" : text) (errno \(code))"
            switch code {
            case 28, 122: reason += "; the disk (or quota) is full where '\(file)' is written: free space there, then rerun (a stopped run continues with --resume)"
            case 13, 1: reason += "; this process may not write '\(file)': check the directory's permissions"
            case 30: reason += "; '\(file)' is on a read-only file system"
            default: break
            }
            reason += ". "
        }
        // each frame up to its first detail list (", time = …, filename = …" of a failed write), on one line
        func short(_ f: String) -> String {
            var t = f.replacingOccurrences(of: "\n", with: " ")
            if let cut = t.range(of: ": time = ") ?? t.range(of: ", filename = ") { t = String(t[..<cut.lowerBound]) }
            return t.count > 200 ? String(t.prefix(200)) + "…" : t
        }
        let shown = frames.count <= 2 ? frames.map(short).joined(separator: "; ") : short(frames[0]) + "; …; " + short(frames[frames.count - 1])
        return reason + "HDF5: " + shown + (frames.count > 2 ? " (\(frames.count) frames; PILOT_HDF5_STACK=1 prints them all)" : "")
    }

    public var description: String {
        switch self {
        case let .mpi(op, rank, code, msg):
            return "rank \(rank): MPI error in \(op) (code \(code)): \(msg)"
        case let .aborted(op, rank, cause):
            return "rank \(rank): \(op) aborted because another rank failed: \(cause)"
        case let .hdf5(op, file, object, detail):
            let obj = object.isEmpty ? "" : " object '\(object)'"
            return "HDF5 \(op) failed on file '\(file)'\(obj): \(PilotError.summarizeHDF5(detail, file: file))"
        case let .checksumMismatch(file, dataset, expected, actual):
            return "checksum mismatch in file '\(file)' dataset '\(dataset)': stored sha256 \(expected.prefix(16))…, data hashes to \(actual.prefix(16))…. The file is corrupt; restore it from an earlier checkpoint or regenerate it."
        case let .typeMismatch(file, object, expected, found):
            return "file '\(file)' object '\(object)': expected \(expected) but found \(found)"
        case let .notFound(file, object):
            return object.isEmpty ? "file '\(file)' not found" : "file '\(file)' has no object '\(object)'"
        case let .invalidArgument(msg), let .message(msg):
            return msg
        }
    }
}
