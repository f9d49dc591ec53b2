#if canImport(Glibc)
import Glibc
#endif

/// A line that is written to stderr if the process dies of a signal while it is set: the fuzz test sets it
/// to the seed and the mutation of each case, so a crash (a trap, a failed allocation) names the case
/// that caused it without printing every case that did not. The handlers are installed for the fuzz run
/// only; each one writes the line, puts the previous handler back (Swift's backtracer, or the default)
/// and returns, so the fault happens again and ends the process as it would have.
enum CrashNote {
    static let signals: [Int32] = [SIGSEGV, SIGBUS, SIGILL, SIGTRAP, SIGFPE, SIGABRT]
    nonisolated(unsafe) static let line = UnsafeMutablePointer<CChar>.allocate(capacity: 1024)
    nonisolated(unsafe) static var length = 0
    nonisolated(unsafe) static let saved = UnsafeMutablePointer<sigaction>.allocate(capacity: 65)

    static func set(_ text: String) {
        let bytes = Array(("\nfuzz case in progress when the process died: " + text + "\n").utf8.prefix(1023))
        for (i, b) in bytes.enumerated() { line[i] = CChar(bitPattern: b) }
        length = bytes.count
    }

    static func install() {
        length = 0
        for s in signals {
            var action = sigaction()
            action.__sigaction_handler.sa_handler = { sig in
                _ = write(2, CrashNote.line, CrashNote.length)
                _ = sigaction(sig, CrashNote.saved + Int(sig), nil)
            }
            sigemptyset(&action.sa_mask)
            _ = sigaction(s, &action, saved + Int(s))
        }
    }

    static func uninstall() {
        for s in signals { _ = sigaction(s, saved + Int(s), nil) }
        length = 0
    }
}
