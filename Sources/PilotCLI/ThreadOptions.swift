import ArgumentParser
import Foundation
import PilotTensor

/// `--threads` of the commands that train under MPI (`pilot train`, `pilot pretrain`): the engine's
/// threads per rank. Under Slurm the default is the CPUs Slurm gave each task, so `srun -c 8` uses
/// 8 without a flag; elsewhere it is 1, right for mpirun with one rank per core. The same thread
/// count gives the same bits; another count changes the last bits of the training numbers (measured:
/// a tiny-smollm2 pilot round at 1 and 2 threads, equal eval scores, 322 datasets differing in the
/// last bits), so resume a run with the thread count it started with (docs/federation.md).
struct ThreadOptions: ParsableArguments {
    @Option(help: "Engine threads per rank (OpenBLAS and the engine's own loops). Default: SLURM_CPUS_PER_TASK under Slurm, else 1 (one rank per core under mpirun). Bitwise resume needs the count the run started with.")
    var threads: Int?

    func validate() throws {
        if let t = threads, !(1...256).contains(t) { throw ValidationError("--threads must be in 1...256, not \(t)") }
    }

    /// The thread count and where it came from ("--threads", "SLURM_CPUS_PER_TASK" or "default").
    func resolved(environment: [String: String] = ProcessInfo.processInfo.environment) -> (count: Int, source: String) {
        if let threads { return (threads, "--threads") }
        if let s = environment["SLURM_CPUS_PER_TASK"], let n = Int(s.trimmingCharacters(in: .whitespaces)), n >= 1 {
            return (min(n, 256), "SLURM_CPUS_PER_TASK")
        }
        return (1, "default")
    }

    /// Sets the engine's thread pool (and OpenBLAS's threads) for this rank; returns "N (source)".
    @discardableResult
    func configure() -> String {
        let (n, source) = resolved()
        Parallel.configure(threads: n)
        return "\(n) engine thread\(n == 1 ? "" : "s") per rank (\(source))"
    }
}
