import Foundation
import PilotCore
import PilotFederation
import PilotTensor

/// Pins OpenBLAS's kernel (`run.blas_core` of `pilot train`, `--blas-core` of `pilot pretrain`).
/// OpenBLAS reads OPENBLAS_CORETYPE once, when the library loads, so pinning the kernel means
/// setting the variable and starting this process again (exec, same pid, before MPI_Init) when the
/// loaded kernel is another one.
enum BLASPin {
    /// The kernels a pin may name (OPENBLAS_CORETYPE values): the choices of `run.blas_core`.
    static let choices = ["haswell", "skylakex", "cooperlake", "zen", "sandybridge"]

    /// `run.blas_core` of the run's config (the resumed run's stored one with `resume`).
    static func apply(config: String?, resume: String?) throws {
        let path = resume.map { $0 + "/config.toml" } ?? config
        guard let path, let cfg = try? RunSettings(RunConfig(file: ConfigFile(path: path))), let want = cfg.run.blasCore else { return }
        try apply(want, what: "run.blas_core = \"\(want)\"", remove: "remove run.blas_core")
    }

    /// Restarts this process with OPENBLAS_CORETYPE=`want` unless OpenBLAS already runs that kernel.
    static func apply(_ want: String, what: String, remove: String) throws {
        if BLASRuntime.coreName.lowercased() == want.lowercased() { return }
        if ProcessInfo.processInfo.environment["PILOT_BLAS_PINNED"] != nil {
            throw PilotError.message("\(what), but OpenBLAS loaded its \(BLASRuntime.coreName) kernel even with OPENBLAS_CORETYPE=\(want): this CPU or OpenBLAS build cannot run that kernel; \(remove) or choose one this CPU supports")
        }
        setenv("OPENBLAS_CORETYPE", want, 1)
        setenv("PILOT_BLAS_PINNED", "1", 1)
        var args = CommandLine.arguments.map { strdup($0) }
        args.append(nil)
        execv("/proc/self/exe", &args)
        throw PilotError.message("\(what): cannot restart pilot with OPENBLAS_CORETYPE=\(want): \(String(cString: strerror(errno)))")
    }
}
