import CHDF5
import Foundation
import PilotCore

/// Every call into libhdf5 goes through this one recursive lock, so that a sequence of calls
/// (open, read, verify) is atomic with respect to other threads of the process.
let h5Lock = NSRecursiveLock()

/// Every call switches off HDF5's automatic error printing first: HDF5's error stack becomes
/// the message of a Swift error instead of text on stderr behind the caller's back. Debian's
/// libhdf5 keeps that setting per thread, so setting it once is not enough.
@inline(__always)
func withH5<R>(_ body: () throws -> R) rethrows -> R {
    h5Lock.lock()
    defer { h5Lock.unlock() }
    _ = h5NoExitHandler
    _ = pilot_h5_silence_errors()
    return try body()
}

/// `H5dont_atexit()`, once, before the first other HDF5 call: libhdf5's exit handler closes every file
/// still open, and one whose close already failed (a write on a full disk) crashes it there (H5F__close_cb,
/// HDF5 1.10, seen on `pilot pretrain` to a full tmpfs). Nothing here relies on it: every file pilot
/// writes is flushed and closed by `commit()`, and an uncommitted one is a temporary file that is discarded.
let h5NoExitHandler: Void = { _ = H5dont_atexit() }()

/// HDF5's current error stack as one line ("H5Fopen(): unable to open file; …"), cleared afterwards.
func h5ErrorStack() -> String {
    var buf = [CChar](repeating: 0, count: 4096)
    _ = pilot_h5_error_stack(&buf, buf.count)
    return String(cBuffer: buf)
}

/// Checks an identifier returned by HDF5 (negative means failure).
@discardableResult
func check(_ id: hid_t, _ operation: @autoclosure () -> String, file: String, object: String = "") throws -> hid_t {
    if id < 0 {
        throw PilotError.hdf5(operation: operation(), file: file, object: object, detail: h5ErrorStack())
    }
    return id
}

/// Checks a status code returned by HDF5 (negative means failure).
func check(_ status: herr_t, _ operation: @autoclosure () -> String, file: String, object: String = "") throws {
    if status < 0 {
        throw PilotError.hdf5(operation: operation(), file: file, object: object, detail: h5ErrorStack())
    }
}

/// Closes an identifier when the scope ends.
struct H5Handle {
    let id: hid_t
    let close: (hid_t) -> herr_t
    func release() { if id >= 0 { _ = close(id) } }
}
