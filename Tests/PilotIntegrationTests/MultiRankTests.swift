import Foundation
import PilotTestSupport
import Testing

/// Tests that launch the release `pilot` binary under mpirun (built by scripts/test.sh first).
/// Serialized: each mpirun already uses more ranks than this machine has cores.
@Suite("mpirun", .serialized)
struct MultiRankTests {
    @Test("mpirun -np 4 pilot selftest passes every check")
    func selftest() throws {
        let r = try runProcess(mpirunPath, mpirunArguments(np: 4) + [pilotBinary, "selftest"], timeout: 120)
        #expect(r.status == 0, "stderr: \(r.stderr)")
        let lines = r.stdout.split(separator: "\n")
        let checks = ["mpi", "split", "allreduce", "gatherv", "scatterv", "broadcast", "hdf5", "openblas"]
        for c in checks {
            #expect(lines.contains { $0.hasPrefix("PASS \(c):") }, "no PASS line for \(c) in:\n\(r.stdout)")
        }
        #expect(!r.stdout.contains("FAIL"))
        #expect(r.stdout.contains("selftest: \(checks.count) passed, 0 failed"))
        #expect(r.stdout.contains("threads=1"), "OpenBLAS thread count missing")
    }

    @Test("an error thrown on one rank aborts the whole job with the rank and command named")
    func failingRankAborts() throws {
        let r = try runProcess(mpirunPath, mpirunArguments(np: 4) + [pilotBinary, "selftest", "--fail-on-rank", "2"], timeout: 60)
        #expect(r.status != 0)
        #expect(r.seconds < 30, "the job took \(r.seconds) s to end")
        #expect(r.stderr.contains("pilot: rank 2 of 4: in `pilot selftest`: selftest was asked to fail on rank 2"), "stderr: \(r.stderr)")
    }

    @Test("an odd world size and a single rank work too", arguments: [1, 3])
    func otherSizes(np: Int) throws {
        let r = try runProcess(mpirunPath, mpirunArguments(np: np) + [pilotBinary, "selftest"], timeout: 120)
        #expect(r.status == 0, "stdout: \(r.stdout) stderr: \(r.stderr)")
        #expect(r.stdout.contains("0 failed"))
    }
}
