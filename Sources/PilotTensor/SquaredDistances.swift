import CPilotKernels

/// ‖a − B[r]‖² for each row r of a row-major [rows, cols] matrix, in the fixed order of the one-row
/// products (64 lanes of fused multiply-adds, then a pairwise tree: pilot_kernels.h), so every kernel
/// level gives the same bits, and ‖a − b‖² and ‖b − a‖² are equal bit for bit.
public enum SquaredDistances {
    public static func rows(_ b: UnsafePointer<Float>, _ a: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>,
                            rows: Int, cols: Int, kernel: GEMVKernel = .best) {
        pilot_sqdist_rows(kernel.rawValue, b, a, y, rows, cols)
    }
}
