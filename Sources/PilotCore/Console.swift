#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Unbuffered writes to stdout/stderr (file descriptors 1 and 2), safe to call from any thread.
public enum Console {
    public static func error(_ line: String) { write(fd: 2, line.hasSuffix("\n") ? line : line + "\n") }
    public static func out(_ line: String) { write(fd: 1, line.hasSuffix("\n") ? line : line + "\n") }

    public static func write(fd: Int32, _ text: String) {
        var bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeMutableBytes { buf in
                #if canImport(Glibc)
                Glibc.write(fd, buf.baseAddress! + offset, buf.count - offset)
                #else
                Darwin.write(fd, buf.baseAddress! + offset, buf.count - offset)
                #endif
            }
            if n <= 0 { break }
            offset += n
        }
    }

    /// True when `fd` is a terminal (progress bars are drawn only then).
    public static func isTerminal(_ fd: Int32) -> Bool { isatty(fd) != 0 }
}

extension String {
    /// Decodes a NUL-terminated C buffer as UTF-8 (text after the first NUL is ignored).
    public init(cBuffer: [CChar]) {
        let end = cBuffer.firstIndex(of: 0) ?? cBuffer.count
        self = String(decoding: cBuffer[..<end].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
