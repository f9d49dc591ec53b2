import CPilotKernels
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Single-core read bandwidth: the limit of a memory-bound decode step, which reads every weight once.
///
/// The buffer is written before it is read: the pages of a buffer that was never written all map the
/// kernel's one zero page, which stays in cache, and read at 105–113 GB/s on this workplace's Zen 4,
/// against 15–26 GB/s for written pages (measured 2026-12-07). memcpy is no measure either: it writes as
/// much as it reads (12–14 GB/s).
public final class ReadBandwidthProbe {
    public let bytes: Int
    private let buffer: UnsafeMutableRawPointer

    /// A written buffer of `bytes` (rounded down to 256), far larger than the caches for a fair figure (1 GiB).
    public init(bytes: Int = 1 << 30) {
        self.bytes = max(256, bytes / 256 * 256)
        buffer = .allocate(byteCount: self.bytes, alignment: 64)
        let floats = buffer.bindMemory(to: Float.self, capacity: self.bytes / 4)
        for i in 0..<(self.bytes / 4) { floats[i] = Float(i & 1023) }
    }

    deinit { buffer.deallocate() }

    /// Which time a rate divides by.
    public enum Clock: Sendable {
        /// Elapsed time.
        case wall
        /// CPU time of the calling thread (stalls on memory included, time descheduled not): on a
        /// machine shared with other processes, the rate while this thread runs, which is what a
        /// single-threaded decode step timed the same way can be compared with.
        case thread

        /// Now, in seconds.
        public func now() -> Double {
            switch self {
            case .wall: return Double(DispatchTime.now().uptimeNanoseconds) / 1e9
            case .thread:
                var t = timespec()
                clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t)
                return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
            }
        }
    }

    /// Bytes per second of one vectorized read loop over the buffer (the widest loads `GEMVKernel.best`
    /// has) on the calling thread: the median of `repeats` passes.
    public func measure(repeats: Int = 5, clock: Clock = .wall) -> Double {
        var rates: [Double] = []
        for _ in 0..<max(1, repeats) { rates.append(read(offset: 0, count: bytes, clock: clock)) }
        return rates.sorted()[rates.count / 2]
    }

    /// Bytes per second of reading slice `i` (cyclically) of `slices` equal slices: a sample short enough
    /// to take between two decode steps, so that both see the same load from other processes. Slices
    /// of 64 MiB or more leave nothing of a slice in the caches by the time it comes round again.
    public func measure(slice i: Int, of slices: Int, clock: Clock = .wall) -> Double {
        let size = bytes / max(1, slices) / 256 * 256
        return read(offset: (i % max(1, slices)) * size, count: max(256, size), clock: clock)
    }

    private func read(offset: Int, count: Int, clock: Clock) -> Double {
        let t0 = clock.now()
        _ = pilot_read_sum(GEMVKernel.best.rawValue, buffer + offset, count)   // a C call: the loads cannot be dropped
        return Double(count) / (clock.now() - t0)
    }
}
