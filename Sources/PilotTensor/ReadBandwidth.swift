import CPilotKernels
import Foundation

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

    /// Bytes per second of one vectorized read loop over the buffer (the widest loads `GEMVKernel.best`
    /// has) on the calling thread: the median of `repeats` passes, so that a pass slowed by another
    /// process counts no more than a decode step slowed by it (`pilot bench --decode` takes the median
    /// step too).
    public func measure(repeats: Int = 5) -> Double {
        var rates: [Double] = []
        for _ in 0..<max(1, repeats) {
            let t0 = DispatchTime.now().uptimeNanoseconds
            _ = pilot_read_sum(GEMVKernel.best.rawValue, buffer, bytes)   // a C call: the loads cannot be dropped
            rates.append(Double(bytes) / (Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9))
        }
        return rates.sorted()[rates.count / 2]
    }
}
