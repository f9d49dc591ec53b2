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

    /// Runs `body(part)` for part in `0..<parts` on the calling thread and the pool's workers (any
    /// thread may run any part; parts write disjoint memory). Falls back to running the parts in order
    /// on the caller when the pool is busy or absent.
    @usableFromInline
    static func run(parts: Int, _ body: (Int) -> Void) {
        guard parts > 1, let pool = _pool, parts < 65_536, pool.acquire() else {
            for p in 0..<parts { body(p) }
            return
        }
        withoutActuallyEscaping(body) { pool.execute(chunks: parts, $0) }
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
/// condition variable. One caller at a time owns it (`acquire`/`release`). A job is a fixed list of
/// chunks; the caller and the workers claim chunks from one atomic ticket (generation | total | next),
/// so which thread runs a chunk depends on timing but what a chunk computes does not (results stay
/// bitwise reproducible), and a worker that is descheduled by a foreign load does not stall the caller:
/// the caller runs the unclaimed chunks itself and waits only for chunks already running elsewhere.
final class WorkerPool: @unchecked Sendable {
    let parts: Int
    /// generation (bits 32…63) | total chunks (16…31) | next unclaimed chunk (0…15)
    private let ticket = Atomic<Int>(0)
    private let done = Atomic<Int>(0)
    private let owned = Atomic<Bool>(false)
    nonisolated(unsafe) private var job: ((Int) -> Void)?
    nonisolated(unsafe) private var gen = 0
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
                start.pool.loop()
                return nil
            }, box.toOpaque())
            pthread_detach(tid)
        }
    }

    func acquire() -> Bool { owned.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged }
    func release() { owned.store(false, ordering: .releasing) }

    /// Claims the next chunk of generation `g`; nil when that job has no unclaimed chunk (or is over).
    @inline(__always)
    private func claim(_ g: Int) -> Int? {
        var t = ticket.load(ordering: .acquiring)
        while true {
            let tg = t >> 32, total = (t >> 16) & 0xFFFF, next = t & 0xFFFF
            if tg != g || next >= total { return nil }
            let r = ticket.compareExchange(expected: t, desired: t + 1, ordering: .acquiringAndReleasing)
            if r.exchanged { return next }
            t = r.original
        }
    }

    /// Runs `body(c)` for every chunk c in `0..<chunks` (chunks < 65536) on this thread and the workers.
    func execute(chunks: Int, _ body: @escaping (Int) -> Void) {
        job = body
        done.store(0, ordering: .relaxed)
        gen = (gen + 1) & 0x7FFF_FFFF
        let g = gen
        pthread_mutex_lock(mutex)
        ticket.store((g << 32) | (chunks << 16), ordering: .releasing)
        if sleepers > 0 { pthread_cond_broadcast(cond) }
        pthread_mutex_unlock(mutex)
        while let c = claim(g) {
            body(c)
            done.wrappingAdd(1, ordering: .releasing)
        }
        var spins = 0
        while done.load(ordering: .acquiring) != chunks {
            spins += 1
            if spins > 20_000 { sched_yield() }   // a chunk runs on a descheduled worker: give it the core
        }
        job = nil
    }

    private func loop() {
        var seen = 0
        while true {
            var g = ticket.load(ordering: .acquiring) >> 32
            var spins = 0
            while g == seen {
                spins += 1
                if spins >= WorkerPool.spinLimit {
                    pthread_mutex_lock(mutex)
                    sleepers += 1
                    g = ticket.load(ordering: .acquiring) >> 32
                    while g == seen {
                        pthread_cond_wait(cond, mutex)
                        g = ticket.load(ordering: .acquiring) >> 32
                    }
                    sleepers -= 1
                    pthread_mutex_unlock(mutex)
                    break
                }
                g = ticket.load(ordering: .acquiring) >> 32
            }
            seen = g
            while let c = claim(g) {
                job!(c)
                done.wrappingAdd(1, ordering: .releasing)
            }
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
