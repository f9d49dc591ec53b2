import ArgumentParser
import Foundation
import PilotComm
import PilotCore
import PilotHDF5
import PilotTensor

/// `pilot selftest`: proves that MPI, OpenBLAS and HDF5 work together on this machine.
/// Every check is collective: it passes only if it passed on every rank.
struct SelftestCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "selftest",
        abstract: "Check MPI collectives, OpenBLAS and HDF5 on this machine (run under mpirun).",
        discussion: """
        Run it as the job would run: `mpirun -np 4 pilot selftest` on a workstation, or \
        `srun --mpi=pmix -n 4 pilot selftest` on Slurm. Rank 0 acts as the server and the other \
        ranks as clients split into per-task communicators. Rank 0 prints one PASS/FAIL line per \
        check; the exit status is non-zero if any check failed on any rank.
        """)

    @Option(help: "Number of tasks for the per-task communicator split (default: 3, or fewer so that some task has 2 or more clients).")
    var tasks: Int?

    @Option(help: "Directory for the HDF5 test file (removed afterwards).")
    var dir: String = FileManager.default.temporaryDirectory.path

    @Option(help: ArgumentHelp("Throw an error on this world rank midway, to show that the job aborts instead of hanging.", visibility: .hidden))
    var failOnRank: Int?

    func validate() throws {
        if let tasks, tasks < 1 { throw ValidationError("--tasks must be at least 1 (got \(tasks))") }
    }

    func run() throws {
        let world = try MPIRuntime.world()
        let report = SelftestReport(world: world)
        let clients = max(1, world.size - 1)
        let taskCount = tasks ?? min(3, max(1, (clients + 1) / 2))
        try SelftestChecks(world: world, tasks: taskCount, dir: dir, failOnRank: failOnRank, report: report).runAll()
        if world.isRoot {
            Console.out("selftest: \(report.passed) passed, \(report.failed) failed")
        }
        if report.failed > 0 { throw ExitCode(1) }
    }
}

/// Collects verdicts; each verdict is agreed on by all ranks before rank 0 prints it.
final class SelftestReport {
    let world: any Communicator
    var passed = 0
    var failed = 0

    init(world: any Communicator) { self.world = world }

    /// Runs one check on every rank; the check fails if it fails (or throws) on any rank.
    func check(_ name: String, _ body: () throws -> String) throws {
        var detail = ""
        var ok: Int64 = 1
        do { detail = try body() } catch let e as PilotError where isCollectiveFailure(e) {
            throw e
        } catch {
            ok = 0
            detail = "rank \(world.rank): \(error)"
        }
        let allOK = try world.allreduce(scalar: ok == 1 ? Int64(0) : Int64(1), op: .sum) == 0
        // Every failing rank's detail reaches rank 0.
        let failingDetails = try world.gatherv(Array((ok == 1 ? "" : detail).utf8), root: 0)
        if world.isRoot {
            if allOK {
                passed += 1
                Console.out("PASS \(name): \(detail)")
            } else {
                failed += 1
                let why = failingDetails.map { String(decoding: $0, as: UTF8.self) }.filter { !$0.isEmpty }.joined(separator: "; ")
                Console.out("FAIL \(name): \(why)")
            }
        }
    }

    private func isCollectiveFailure(_ e: PilotError) -> Bool {
        if case .mpi = e { return true }
        if case .aborted = e { return true }
        return false
    }
}
