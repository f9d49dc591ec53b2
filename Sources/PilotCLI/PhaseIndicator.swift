import Foundation
import PilotCore

/// On a terminal, redraws "round r · phase · seconds" once a second on one line while rank 0 waits
/// in a collective (a helper thread draws; it never calls MPI). Elsewhere it does nothing, so logs
/// get only the plain per-round lines. OpenMPI gives rank 0 a pseudo-terminal even when mpirun's
/// output is redirected, so `PILOT_TTY=0` (set by scripts/mpirun.sh in that case) turns it off.
final class PhaseIndicator: @unchecked Sendable {
    private let lock = NSLock()
    private var label = ""
    private var since = Date()
    private var active = false
    let enabled = Console.isTerminal(1) && ProcessInfo.processInfo.environment["PILOT_TTY"] != "0"

    init() {
        guard enabled else { return }
        let t = Thread { [weak self] in
            while let self {
                Thread.sleep(forTimeInterval: 1)
                self.draw()
            }
        }
        t.start()
    }

    func start(round: Int, phase: String) {
        guard enabled else { return }
        lock.lock(); label = "round \(round) · \(phase)"; since = Date(); active = true; lock.unlock()
        draw()
    }

    /// Clears the indicator before a normal line is printed.
    func clear() {
        guard enabled else { return }
        lock.lock(); active = false; lock.unlock()
        Console.write(fd: 1, "\r\u{1B}[2K")
    }

    private func draw() {
        lock.lock(); defer { lock.unlock() }
        guard active else { return }
        Console.write(fd: 1, String(format: "\r\u{1B}[2K%@ … %.0fs", label, Date().timeIntervalSince(since)))
    }
}
