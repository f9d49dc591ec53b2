import Foundation

/// An opt-in per-shape timer around `sgemm` (PILOT_GEMM_PROFILE=1 in the environment), for finding where
/// a step's matrix products go: calls, seconds and GFLOP/s per (op(A), op(B), m, n, k). Off, it costs one
/// branch on a constant per product. Times are wall time per call, so with several threads the products
/// that run inside a parallel loop (attention heads) add up to more than the wall time.
public enum GEMMProfile {
    public static let enabled: Bool = ProcessInfo.processInfo.environment["PILOT_GEMM_PROFILE"].map { $0 != "" && $0 != "0" } ?? false

    struct Entry { var calls = 0; var seconds = 0.0; var flops = 0.0 }
    nonisolated(unsafe) static var entries: [String: Entry] = [:]
    static let lock = NSLock()

    @usableFromInline
    static func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

    @usableFromInline
    static func record(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, since t0: UInt64) {
        let dt = Double(now() - t0) / 1e9
        let key = "\(transA ? "T" : "N")\(transB ? "T" : "N") m=\(m) n=\(n) k=\(k)"
        lock.lock(); defer { lock.unlock() }
        var e = entries[key, default: Entry()]
        e.calls += 1; e.seconds += dt; e.flops += 2 * Double(m) * Double(n) * Double(k)
        entries[key] = e
    }

    /// Clears what was recorded (e.g. after warm-up steps).
    public static func reset() { lock.lock(); entries = [:]; lock.unlock() }

    /// One line per shape, the most time first, and the total.
    public static func report(steps: Int = 1) -> String {
        lock.lock(); defer { lock.unlock() }
        let total = entries.values.reduce(0) { $0 + $1.seconds }
        var lines = [String(format: "sgemm profile: %.3f s per step in %d shapes", total / Double(max(1, steps)), entries.count)]
        for (key, e) in entries.sorted(by: { $0.value.seconds > $1.value.seconds }) {
            lines.append(String(format: "  %-34@ %6d calls/step %8.4f s/step %6.1f GFLOP/s", key as NSString,
                                e.calls / max(1, steps), e.seconds / Double(max(1, steps)), e.flops / e.seconds / 1e9))
        }
        return lines.joined(separator: "\n")
    }
}
