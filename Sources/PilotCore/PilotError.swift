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

    public var description: String {
        switch self {
        case let .mpi(op, rank, code, msg):
            return "rank \(rank): MPI error in \(op) (code \(code)): \(msg)"
        case let .aborted(op, rank, cause):
            return "rank \(rank): \(op) aborted because another rank failed: \(cause)"
        case let .hdf5(op, file, object, detail):
            let obj = object.isEmpty ? "" : " object '\(object)'"
            return "HDF5 \(op) failed on file '\(file)'\(obj): \(detail.isEmpty ? "no detail from HDF5" : detail)"
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
