import Foundation

/// The node's memory as the kernel reports it in /proc/meminfo, for refusing work that cannot fit
/// before it starts (a kernel OOM kill halfway through a round loses the round and says nothing).
/// `PILOT_MEMINFO` names another file in that format (for a test of a whole run).
public enum MemoryInfo {
    public static var defaultPath: String { ProcessInfo.processInfo.environment["PILOT_MEMINFO"] ?? "/proc/meminfo" }

    /// MemAvailable (what can be allocated without swapping, page cache that can be dropped included)
    /// and MemTotal, in bytes; nil where the file cannot be read (not Linux).
    public static func read(path: String = defaultPath) -> (available: Int, total: Int)? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        var kb: [String: Int] = [:]
        for line in text.split(separator: "\n") {
            let parts = line.split(whereSeparator: { $0 == ":" || $0 == " " })
            if parts.count >= 2, let v = Int(parts[1]) { kb[String(parts[0])] = v }
        }
        guard let available = kb["MemAvailable"], let total = kb["MemTotal"] else { return nil }
        return (available * 1024, total * 1024)
    }

    /// Throws, naming `what`, the bytes it needs and the bytes the node has available, when `bytes`
    /// exceed MemAvailable less `reserve`. Does nothing where /proc/meminfo cannot be read.
    /// - Parameter fix: what the user can do, appended to the message.
    public static func require(_ bytes: Int, for what: String, reserve: Int = 0, fix: String, meminfo: String = defaultPath) throws {
        guard let m = read(path: meminfo), bytes + reserve > m.available else { return }
        throw PilotError.message("not enough memory on this node for \(what): it needs \(gib(bytes))\(reserve > 0 ? " plus \(gib(reserve)) for the rest" : ""), and /proc/meminfo has \(gib(m.available)) available of \(gib(m.total)); \(fix)")
    }

    /// Bytes as GiB with two decimals and the exact count.
    public static func gib(_ bytes: Int) -> String { String(format: "%.2f GiB (%d bytes)", Double(bytes) / 1_073_741_824, bytes) }
}
