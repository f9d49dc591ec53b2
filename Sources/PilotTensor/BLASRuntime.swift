import COpenBLAS

/// OpenBLAS's build and thread configuration, reported by `pilot selftest` and `pilot bench`.
public enum BLASRuntime {
    public static var threads: Int { Int(pilot_openblas_threads()) }
    public static func setThreads(_ n: Int) { pilot_openblas_set_threads(Int32(n)) }
    public static var config: String { String(cString: pilot_openblas_config()) }
    public static var coreName: String { String(cString: pilot_openblas_corename()) }
    /// 0: sequential build, 1: pthreads, 2: OpenMP.
    public static var parallelism: String {
        switch pilot_openblas_parallel() { case 0: "sequential"; case 1: "pthreads"; case 2: "openmp"; default: "unknown" }
    }
    public static var summary: String { "\(config) core=\(coreName) threading=\(parallelism) threads=\(threads)" }
}
