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
    @usableFromInline nonisolated(unsafe) static var _pool: WorkerPool?
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

    /// Runs `job.run(part:)` for part in `0..<parts` on the calling thread and the pool's workers (any
    /// thread may run any part; parts write disjoint memory). Falls back to running the parts in order
    /// on the caller when the pool is busy or absent.
    ///
    /// Allocation-free: the job is a value on the caller's stack, and the workers get a pointer to it
    /// plus a trampoline that captures nothing once this generic function is specialised at the call
    /// site (it is inlinable for that). No closure context is boxed per call, so a training step does
    /// not touch the heap; `pilot bench` counts allocations per step and keeps this honest.
    @inlinable @inline(__always)
    public static func run<Job: ParallelJob>(parts: Int, _ job: Job) {
        guard parts > 1, let pool = _pool, parts < 65_536, pool.acquire() else {
            for p in 0..<parts { job.run(part: p) }
            return
        }
        withUnsafePointer(to: job) { ptr in
            pool.execute(chunks: parts, context: UnsafeRawPointer(ptr)) { context, part in
                context.assumingMemoryBound(to: Job.self).pointee.run(part: part)
            }
        }
        pool.release()
    }

    /// Calls `body(context, lo, hi)` on contiguous ranges covering `0..<count`, one per worker.
    /// Runs inline when there is one worker or when `count * costPerItem` is too small to pay for a hand-off.
    ///
    /// `body` must capture nothing: pass what it reads in `context` (a tuple of pointers and sizes).
    /// A capture-free closure is a bare function pointer, so handing it to the workers allocates nothing;
    /// a capturing one still works but costs a heap box per call.
    @inlinable @inline(__always)
    public static func rows<Context>(_ count: Int, costPerItem: Int = 1, context: Context,
                                     _ body: @escaping (_ context: Context, _ lo: Int, _ hi: Int) -> Void) {
        let n = threads
        if n == 1 || count < 2 || count * costPerItem < 16_384 {
            body(context, 0, count)
            return
        }
        let parts = min(n, count)
        run(parts: parts, RangeJob(context: context, count: count, parts: parts) { c, _, lo, hi in body(c, lo, hi) })
    }

    /// Like `rows` but with the worker index, for per-worker scratch buffers.
    @inlinable @inline(__always)
    public static func chunks<Context>(_ count: Int, costPerItem: Int = 1, context: Context,
                                       _ body: @escaping (_ context: Context, _ worker: Int, _ lo: Int, _ hi: Int) -> Void) {
        let n = threads
        if n == 1 || count < 2 || count * costPerItem < 16_384 {
            body(context, 0, 0, count)
            return
        }
        let parts = min(n, count)
        run(parts: parts, RangeJob(context: context, count: count, parts: parts, body: body))
    }
}

/// A unit of parallel work: `run(part:)` for each part writes memory no other part touches.
public protocol ParallelJob {
    func run(part: Int)
}

/// `0..<count` split into `parts` contiguous ranges, part p getting `count·p/parts ..< count·(p+1)/parts`.
@frozen
public struct RangeJob<Context>: ParallelJob {
    public let context: Context
    public let count: Int, parts: Int
    public let body: (Context, Int, Int, Int) -> Void
    @inlinable
    public init(context: Context, count: Int, parts: Int, body: @escaping (Context, Int, Int, Int) -> Void) {
        self.context = context; self.count = count; self.parts = parts; self.body = body
    }
    @inlinable @inline(__always)
    public func run(part p: Int) { body(context, p, count * p / parts, count * (p + 1) / parts) }
}

/// A fixed set of `parts − 1` worker threads that spin briefly for the next job and then sleep on a
/// condition variable. One caller at a time owns it (`acquire`/`release`). A job is a fixed list of
/// chunks; the caller and the workers claim chunks from one atomic ticket (generation | total | next),
/// so which thread runs a chunk depends on timing but what a chunk computes does not (results stay
/// bitwise reproducible), and a worker that is descheduled by a foreign load does not stall the caller:
/// the caller runs the unclaimed chunks itself and waits only for chunks already running elsewhere.
@usableFromInline
final class WorkerPool: @unchecked Sendable {
    let parts: Int
    /// generation (bits 32…63) | total chunks (16…31) | next unclaimed chunk (0…15)
    private let ticket = Atomic<Int>(0)
    private let done = Atomic<Int>(0)
    private let owned = Atomic<Bool>(false)
    /// The running job: a capture-free trampoline and the caller's stack value it reads.
    nonisolated(unsafe) private var jobFunction: ((UnsafeRawPointer, Int) -> Void)?
    nonisolated(unsafe) private var jobContext: UnsafeRawPointer?
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

    @usableFromInline
    func acquire() -> Bool { owned.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged }
    @usableFromInline
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

    /// Runs `function(context, c)` for every chunk c in `0..<chunks` (chunks < 65536) on this thread and
    /// the workers; returns when all chunks are done, so `context` may point into the caller's stack.
    @usableFromInline
    func execute(chunks: Int, context: UnsafeRawPointer, _ function: @escaping (UnsafeRawPointer, Int) -> Void) {
        jobFunction = function; jobContext = context
        done.store(0, ordering: .relaxed)
        gen = (gen + 1) & 0x7FFF_FFFF
        let g = gen
        pthread_mutex_lock(mutex)
        ticket.store((g << 32) | (chunks << 16), ordering: .releasing)
        if sleepers > 0 { pthread_cond_broadcast(cond) }
        pthread_mutex_unlock(mutex)
        while let c = claim(g) {
            function(context, c)
            done.wrappingAdd(1, ordering: .releasing)
        }
        var spins = 0
        while done.load(ordering: .acquiring) != chunks {
            spins += 1
            if spins > 20_000 { sched_yield() }   // a chunk runs on a descheduled worker: give it the core
        }
        jobFunction = nil; jobContext = nil
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
                jobFunction!(jobContext!, c)
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
