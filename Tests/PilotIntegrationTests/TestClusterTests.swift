import Foundation
import PilotTestSupport
import Testing

/// Three hosts on this machine (network namespaces on a bridge of their own, each with its own
/// hostname and node-local scratch) through scripts/testcluster.sh test: `pilot selftest` over TCP
/// between hosts, a 9-client Pilot run on 3 hosts bit for bit equal to the one-host run (bytes per
/// round too), rank 0 opening no client shard, kill -9 of a whole host then a bitwise resume, and a
/// host missing one of its shards, hosts with different builds or bases, and a host without the run directory, each named in the error; with SmolLM2 imported, one copy of the LM per host by each host's PSS; where Slurm is installed, train.sbatch on 3 nodes
/// stopped by USR1, requeued and resumed bitwise. 2 to 4 minutes. Cancelled (reported as skipped)
/// only where namespaces cannot be made: not root, or no `ip netns`.
@Suite("several hosts: scripts/testcluster.sh")
struct TestClusterTests {
    @Test("selftest, bitwise placement across hosts, data locality, kill -9 of a host and resume, a missing shard")
    func testCluster() throws {
        if getuid() != 0 { try Test.cancel("network namespaces need root; scripts/testcluster.sh test as root runs these checks") }
        let probe = try runProcess("/bin/sh", ["-c", "ip netns add pilot-tc-probe && ip netns del pilot-tc-probe"], timeout: 30)
        if probe.status != 0 { try Test.cancel(Comment(rawValue: "ip netns does not work here: \(probe.stderr)")) }
        let state = NSTemporaryDirectory() + "pilot-testcluster-\(getpid())"
        let r = try runProcess("/bin/bash", [repositoryRoot + "/scripts/testcluster.sh", "test"],
                               environment: ["PILOT_BIN": pilotBinary, "PILOT_TESTCLUSTER_STATE": state], timeout: 900)
        let out = r.stdout + r.stderr
        let checks = out.split(separator: "\n").filter { $0.hasPrefix("PASS ") || $0.hasPrefix("FAIL ") }
        #expect(r.status == 0, "scripts/testcluster.sh test exited \(r.status) after \(Int(r.seconds)) s:\n\(out.suffix(6000))")
        for name in ["selftest", "bitwise", "bytes", "locality", "kill-host", "missing-shard", "other-build", "other-base", "no-run-dir"] {
            #expect(checks.contains { $0.hasPrefix("PASS \(name):") }, "no PASS line for \(name):\n\(checks.joined(separator: "\n"))")
        }
        // one copy of the LM per host: checked where SmolLM2 is imported (scripts/test.sh imports it)
        if FileManager.default.fileExists(atPath: repositoryRoot + "/models/smollm2-135m-instruct/config.json") {
            #expect(checks.contains { $0.hasPrefix("PASS one-base:") }, "no PASS line for one-base:\n\(checks.joined(separator: "\n"))")
        }
        #expect(!checks.contains { $0.hasPrefix("FAIL") })
    }
}
