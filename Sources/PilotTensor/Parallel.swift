#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// Thread fan-out for the engine: the non-GEMM loops (norms, activations, attention heads) and, at more
/// than one thread, the large matrix products themselves (`sgemm` splits them in fixed halves and runs
/// each half single-threaded in OpenBLAS, so OpenBLAS's own spinning threads never compete with ours).
/// The partition of `0..<count` into chunks depends only on `count` and `Parallel.threads`, never on
/// timing, and every chunk writes disjoint memory, so results are bitwise reproducible. When the pool is
/// already in use (a nested call from inside a parallel region, or another thread running a model at the
/// same time) the same chunks run one after another on the calling thread: same partition, same bits.
public enum Parallel {
    nonisolated(unsafe) private static var _threads = 1
    nonisolated(unsafe) private static var _pool: WorkerPool?
    nonisolated(unsafe) private static var _splitGEMM = true

    /// Worker count for `Parallel.rows`; set together with OpenBLAS's thread count by `configure`.
    public static var threads: Int {
        get { _threads }
        set {
            let n = max(1, newValue)
            _threads = n
            if n > 1, _pool?.parts != n { _pool = WorkerPool(parts: n) }
        }
    }

    /// Whether `sgemm` splits large products across the engine's threads (default at > 1 thread).
    /// When false, products go to OpenBLAS whole and OpenBLAS threads them itself.
    public static var splitsGEMM: Bool { _splitGEMM && _threads > 1 }

    /// Sets this pool's thread count and OpenBLAS's: with `threads` > 1 the engine splits the large
    /// products itself and OpenBLAS runs single-threaded inside each part (no oversubscription).
    /// `PILOT_GEMM_SPLIT=0` in the environment leaves the threading of products to OpenBLAS instead.
    public static func configure(threads n: Int) {
        threads = n
        if let e = getenv("PILOT_GEMM_SPLIT"), String(cString: e) == "0" { _splitGEMM = false } else { _splitGEMM = true }
        BLASRuntime.setThreads(splitsGEMM ? 1 : n)
    }

    /// Runs `body(part)` for part in `0..<parts` (parts ≤ `threads`), part 0 on the calling thread.
    /// Falls back to running the parts in order on the caller when the pool is busy or absent.
    @usableFromInline
    static func run(parts: Int, _ body: (Int) -> Void) {
        guard parts > 1, let pool = _pool, parts <= pool.parts, pool.acquire() else {
            for p in 0..<parts { body(p) }
            return
        }
        withoutActuallyEscaping(body) { pool.execute(parts: parts, $0) }
        pool.release()
    }

    /// Calls `body(lo, hi)` on contiguous ranges covering `0..<count`, one per worker.
    /// Runs inline when there is one worker or when `count * costPerItem` is too small to pay for a hand-off.
    @inlinable
    public static func rows(_ count: Int, costPerItem: Int = 1, _ body: (Int, Int) -> Void) {
        let n = threads
        if n == 1 || count < 2 || count * costPerItem < 16_384 {
            body(0, count)
            return
        }
        let parts = min(n, count)
        run(parts: parts) { p in body(count * p / parts, count * (p + 1) / parts) }
    }

    /// Like `rows` but with the worker index, for per-worker scratch buffers.
    @inlinable
    public static func chunks(_ count: Int, costPerItem: Int = 1, _ body: (Int, Int, Int) -> Void) {
        let n = threads
        if n == 1 || count < 2 || count * costPerItem < 16_384 {
            body(0, 0, count)
            return
        }
        let parts = min(n, count)
        run(parts: parts) { p in body(p, count * p / parts, count * (p + 1) / parts) }
    }
}

/// A fixed set of `parts − 1` worker threads that spin briefly for the next job and then sleep on a
/// condition variable. One caller at a time owns it (`acquire`/`release`).
final class WorkerPool: @unchecked Sendable {
    let parts: Int
    private let generation = Atomic<Int>(0)
    private let pending = Atomic<Int>(0)
    private let owned = Atomic<Bool>(false)
    nonisolated(unsafe) private var job: ((Int) -> Void)?
    nonisolated(unsafe) private var jobParts = 0
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let cond: UnsafeMutablePointer<pthread_cond_t>
    nonisolated(unsafe) private var sleepers = 0
    /// Spin iterations before a worker sleeps (roughly 50–100 µs).
    private static let spinLimit = 100_000

    init(parts: Int) {
        self.parts = parts
        mutex = .allocate(capacity: 1); cond = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil); pthread_cond_init(cond, nil)
        for w in 1..<parts {
            let box = Unmanaged.passRetained(WorkerStart(pool: self, index: w))
            var tid = pthread_t()
            _ = pthread_create(&tid, nil, { arg in
                let start = Unmanaged<WorkerStart>.fromOpaque(arg!).takeRetainedValue()
                start.pool.loop(index: start.index)
                return nil
            }, box.toOpaque())
            pthread_detach(tid)
        }
    }

    func acquire() -> Bool { owned.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged }
    func release() { owned.store(false, ordering: .releasing) }

    func execute(parts n: Int, _ body: @escaping (Int) -> Void) {
        job = body; jobParts = n
        pending.store(parts - 1, ordering: .relaxed)
        pthread_mutex_lock(mutex)
        generation.wrappingAdd(1, ordering: .releasing)
        if sleepers > 0 { pthread_cond_broadcast(cond) }
        pthread_mutex_unlock(mutex)
        body(0)
        var spins = 0
        while pending.load(ordering: .acquiring) != 0 {
            spins += 1
            if spins > 20_000 { sched_yield() }   // the worker was descheduled: give it the core
        }
        job = nil
    }

    private func loop(index: Int) {
        var seen = 0
        while true {
            var g = generation.load(ordering: .acquiring)
            var spins = 0
            while g == seen {
                spins += 1
                if spins >= WorkerPool.spinLimit {
                    pthread_mutex_lock(mutex)
                    sleepers += 1
                    g = generation.load(ordering: .acquiring)
                    while g == seen {
                        pthread_cond_wait(cond, mutex)
                        g = generation.load(ordering: .acquiring)
                    }
                    sleepers -= 1
                    pthread_mutex_unlock(mutex)
                    break
                }
                g = generation.load(ordering: .acquiring)
            }
            seen = g
            if index < jobParts, let job { job(index) }
            pending.subtract(1, ordering: .releasing)
        }
    }
}

private final class WorkerStart {
    let pool: WorkerPool, index: Int
    init(pool: WorkerPool, index: Int) { self.pool = pool; self.index = index }
}

/// Carries a value into a `@Sendable` closure. Used only where the work items touch disjoint memory.
public struct UncheckedSendable<T>: @unchecked Sendable {
    public let value: T
    @inlinable public init(_ value: T) { self.value = value }
}
