import Foundation
import PilotTestSupport
import Testing

/// #34 item 2: TERM from any direction is the graceful stop under scripts/mpirun.sh, through
/// scripts/test_signals.sh: TERM to the mpirun process itself and to every process of the job
/// during round 2 commits round 2, every rank exits 75 and rank 0 says so; when round 2 cannot end
/// within the stop grace, every rank exits 75 at its end and rank 0 says that round 1 survives;
/// each run then resumes to the bits of an uninterrupted one. About a minute.
@Suite("stop signals under scripts/mpirun.sh")
struct SignalStopTests {
    @Test("TERM to mpirun or to every process: round 2 commits (or round 1 survives the grace), exit 75, bitwise-equal resume")
    func termFromAnyDirection() throws {
        let r = try runProcess("/bin/bash", [repositoryRoot + "/scripts/test_signals.sh"],
                               environment: ["PILOT_BIN": pilotBinary], timeout: 300)
        let lines = (r.stdout + r.stderr).split(separator: "\n")
        #expect(r.status == 0, "scripts/test_signals.sh exited \(r.status) after \(Int(r.seconds)) s:\n\(lines.suffix(60).joined(separator: "\n"))")
        #expect(r.stdout.contains("PASS (stop signals under mpirun)"))
    }
}
