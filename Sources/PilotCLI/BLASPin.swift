import Foundation
import PilotCore
import PilotFederation
import PilotTensor

/// `run.blas_core`: OpenBLAS reads OPENBLAS_CORETYPE once, when the library loads, so pinning the
/// kernel from a config means setting the variable and starting this process again (exec, same
/// pid, before MPI_Init) when the loaded kernel is another one.
enum BLASPin {
    static func apply(config: String?, resume: String?) throws {
        let path = resume.map { $0 + "/config.toml" } ?? config
        guard let path, let cfg = try? RunSettings(RunConfig(file: ConfigFile(path: path))), let want = cfg.run.blasCore else { return }
        if BLASRuntime.coreName.lowercased() == want.lowercased() { return }
        if ProcessInfo.processInfo.environment["PILOT_BLAS_PINNED"] != nil {
            throw PilotError.message("run.blas_core = \"\(want)\", but OpenBLAS loaded its \(BLASRuntime.coreName) kernel even with OPENBLAS_CORETYPE=\(want): this CPU or OpenBLAS build cannot run that kernel; remove run.blas_core or choose one this CPU supports")
        }
        setenv("OPENBLAS_CORETYPE", want, 1)
        setenv("PILOT_BLAS_PINNED", "1", 1)
        var args = CommandLine.arguments.map { strdup($0) }
        args.append(nil)
        execv("/proc/self/exe", &args)
        throw PilotError.message("run.blas_core: cannot restart pilot with OPENBLAS_CORETYPE=\(want): \(String(cString: strerror(errno)))")
    }
}
