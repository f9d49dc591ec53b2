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

    @Test("PILOT_MPI_WAIT=busy (MPI_Wait) passes the selftest too; any other value is refused, naming the variable and its values")
    func waitModes() throws {
        let busy = try runProcess(mpirunPath, mpirunArguments(np: 3) + [pilotBinary, "selftest"], environment: ["PILOT_MPI_WAIT": "busy"], timeout: 120)
        #expect(busy.status == 0, "stdout: \(busy.stdout) stderr: \(busy.stderr)")
        #expect(busy.stdout.contains("selftest: 8 passed, 0 failed"), "stdout: \(busy.stdout)")
        let bad = try runProcess(mpirunPath, mpirunArguments(np: 2) + [pilotBinary, "selftest"], environment: ["PILOT_MPI_WAIT": "spin"], timeout: 60)
        #expect(bad.status != 0)
        #expect(bad.stderr.contains("PILOT_MPI_WAIT=spin: use idle") && bad.stderr.contains("busy"), "stderr: \(bad.stderr)")
    }

    @Test("an odd world size and a single rank work too", arguments: [1, 3])
    func otherSizes(np: Int) throws {
        let r = try runProcess(mpirunPath, mpirunArguments(np: np) + [pilotBinary, "selftest"], timeout: 120)
        #expect(r.status == 0, "stdout: \(r.stdout) stderr: \(r.stderr)")
        #expect(r.stdout.contains("0 failed"))
    }

    @Test("ATA across ranks (pilot bench --ata-clients under mpirun): the same mixed vectors on 3 and 4 ranks, with a collective after every alltoallv")
    func distributedATA() throws {
        var checksums: [String] = []
        for np in [3, 4] {
            let r = try runProcess(mpirunPath, mpirunArguments(np: np) + [pilotBinary, "bench", "--ata-clients", "13", "--ata-params", "5000", "--ata-block", "1000"], timeout: 120)
            #expect(r.status == 0, "-np \(np): stdout: \(r.stdout) stderr: \(r.stderr)")
            let line = r.stdout.split(separator: "\n").first { $0.hasPrefix("mixed vectors' checksum") }
            #expect(line != nil, "-np \(np): no checksum line in \(r.stdout)")
            checksums.append(line.map(String.init) ?? "")
        }
        #expect(checksums[0] == checksums[1], "\(checksums)")
    }
}
