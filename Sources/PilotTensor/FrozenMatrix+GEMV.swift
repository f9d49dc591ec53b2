import CPilotKernels
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The instruction-set level of the one-row products (Sources/CPilotKernels): every level computes
/// the same bits, so the level changes only the speed.
public enum GEMVKernel: Int32, Sendable, CaseIterable, CustomStringConvertible {
    /// Plain C with `fmaf`: any CPU (slow where `fmaf` is not an instruction).
    case portable = 0
    /// x86-64 with AVX2, FMA and F16C.
    case avx2 = 1
    /// x86-64 with AVX-512 F/BW/VL, FMA and F16C.
    case avx512 = 2

    /// The fastest level this CPU runs, found once: or a lower one named by `PILOT_GEMV_KERNEL`
    /// (portable, avx2, avx512; to compare the levels, which compute the same bits).
    public static let best: GEMVKernel = {
        let cpu = GEMVKernel(rawValue: Int32(pilot_kernel_best())) ?? .portable
        guard let e = getenv("PILOT_GEMV_KERNEL"), let asked = allCases.first(where: { "\($0)".lowercased().replacingOccurrences(of: "-", with: "") == String(cString: e).lowercased() })
        else { return cpu }
        return asked.rawValue <= cpu.rawValue ? asked : cpu
    }()

    /// The levels this CPU runs (`portable` ... `best`).
    public static var available: [GEMVKernel] { allCases.filter { $0.rawValue <= best.rawValue } }

    public var description: String {
        switch self {
        case .portable: return "portable"
        case .avx2: return "AVX2"
        case .avx512: return "AVX-512"
        }
    }
}

extension FrozenMatrix {
    /// y[rows] = W·x (+ y when `accumulate`) for one row x [cols]: the product of a decode step, which
    /// streams every weight once in storage order (an m = 1 sgemm packs the matrix first; OpenBLAS's
    /// sgemv streamed it at 48–59% of the read bandwidth; SmolLM2 decodes at 83–92% of its limit in f32
    /// and bf16 with this, about half in q8: docs/performance.md, "Decode").
    ///
    /// Each y[r] is one dot product in a fixed order (64 lanes of fused multiply-adds, then a pairwise
    /// tree: Sources/CPilotKernels/include/pilot_kernels.h) over the row's Float32 values as
    /// `decodeRows` makes them, so bf16 and q8 give the f32 product of the decoded row, bit for bit.
    /// Blocks of rows run on `Parallel`'s threads; the split does not change any bit.
    public func gemv(x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, accumulate: Bool = false,
                     kernel: GEMVKernel = .best) {
        precondition(kernel.rawValue <= GEMVKernel.best.rawValue, "gemv: this CPU does not run the \(kernel) kernels")
        Parallel.rows(rows, costPerItem: cols, context: (self, x, y, accumulate, kernel.rawValue)) { c, lo, hi in
            let (w, x, y, accumulate, kernel) = c
            let n = hi - lo, acc: Int32 = accumulate ? 1 : 0
            let first = w.raw + lo * w.dtype.bytes(rows: 1, cols: w.cols)
            switch w.dtype {
            case .f32:
                pilot_gemv_f32(kernel, first.assumingMemoryBound(to: Float.self), x, y + lo, n, w.cols, acc)
            case .bf16:
                pilot_gemv_bf16(kernel, first.assumingMemoryBound(to: UInt16.self), x, y + lo, n, w.cols, acc)
            case .q8:
                pilot_gemv_q8(kernel, first.assumingMemoryBound(to: UInt8.self), x, y + lo, n, w.cols, acc)
            }
        }
    }
}
