import Foundation
import PilotTestSupport
import Testing

/// The Slurm job scripts (jobs/*.sbatch) on a real single-node Slurm cluster, through
/// scripts/test_slurm.sh: it brings the cluster up with scripts/slurm/slurm-up.sh (installing
/// Slurm with apt-get if needed), submits pretrain, train, a USR1-stopped and self-requeued train whose
/// final round must equal the uninterrupted one bit for bit, a two-element sweep array, and a job that
/// reaches its time limit in a stalled round, exits 75 after the stop grace, requeues itself and resumes
/// to the same bits, then stops the cluster. About three minutes, most of it waiting for the time limit. Cancelled (reported as skipped) only when the script says Slurm
/// cannot run here: not root, Slurm not installable, or its daemons not startable (exit 77, SKIP line).
@Suite("jobs/*.sbatch on a real Slurm cluster")
struct SlurmJobTests {
    @Test("pretrain.sbatch, train.sbatch (finish; USR1 stop, requeue, bitwise-equal resume; time limit, requeue, bitwise-equal resume) and a sweep.sbatch array under sbatch")
    func slurmJobs() throws {
        let r = try runProcess("/bin/bash", [repositoryRoot + "/scripts/test_slurm.sh"],
                               environment: ["PILOT_BIN": pilotBinary], timeout: 600)
        let lines = (r.stdout + r.stderr).split(separator: "\n")
        if r.status == 77 {
            try Test.cancel(Comment(rawValue: lines.last { $0.contains("SKIP") }.map(String.init) ?? "Slurm cannot run here"))
        }
        #expect(r.status == 0, "scripts/test_slurm.sh exited \(r.status) after \(Int(r.seconds)) s:\n\(lines.suffix(60).joined(separator: "\n"))")
        #expect(r.stdout.contains("PASS (slurm job scripts)"))
    }
}
