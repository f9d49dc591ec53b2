import Dispatch

/// Thread fan-out for the non-GEMM loops (norms, activations, attention heads).
/// The partition of `0..<count` into chunks depends only on `count` and `Parallel.threads`, never on
/// timing, and every chunk writes disjoint memory, so results are bitwise reproducible.
public enum Parallel {
    nonisolated(unsafe) private static var _threads = 1

    /// Worker count for `Parallel.rows`; set together with OpenBLAS's thread count.
    public static var threads: Int {
        get { _threads }
        set { _threads = max(1, newValue) }
    }

    /// Sets both OpenBLAS's and this pool's thread count.
    public static func configure(threads n: Int) {
        threads = n
        BLASRuntime.setThreads(n)
    }

    /// Calls `body(lo, hi)` on contiguous ranges covering `0..<count`, one per worker.
    /// Runs inline when there is one worker or when `count * costPerItem` is too small to pay for a hand-off.
    @inlinable
    public static func rows(_ count: Int, costPerItem: Int = 1, _ body: (Int, Int) -> Void) {
        let n = threads
        if n == 1 || count < 2 || count * costPerItem < 32_768 {
            body(0, count)
            return
        }
        let parts = min(n, count)
        withoutActuallyEscaping(body) { body in
            let box = UncheckedSendable(body)
            DispatchQueue.concurrentPerform(iterations: parts) { p in
                let lo = count * p / parts, hi = count * (p + 1) / parts
                box.value(lo, hi)
            }
        }
    }

    /// Like `rows` but with the worker index, for per-worker scratch buffers.
    @inlinable
    public static func chunks(_ count: Int, costPerItem: Int = 1, _ body: (Int, Int, Int) -> Void) {
        let n = threads
        if n == 1 || count < 2 || count * costPerItem < 32_768 {
            body(0, 0, count)
            return
        }
        let parts = min(n, count)
        withoutActuallyEscaping(body) { body in
            let box = UncheckedSendable(body)
            DispatchQueue.concurrentPerform(iterations: parts) { p in
                box.value(p, count * p / parts, count * (p + 1) / parts)
            }
        }
    }
}

/// Carries a value into a `@Sendable` closure. Used only where the work items touch disjoint memory.
public struct UncheckedSendable<T>: @unchecked Sendable {
    public let value: T
    @inlinable public init(_ value: T) { self.value = value }
}
