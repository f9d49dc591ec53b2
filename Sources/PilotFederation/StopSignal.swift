#if canImport(Glibc)
import Glibc
#endif
import Foundation
import PilotCore
import PilotJob
import Synchronization

/// The graceful stop of `pilot train` (docs/running.md, "Stopping a run").
///
/// - SIGUSR1: the round in progress finishes, its checkpoint commits, and every rank exits with
///   `StopSignal.exitCode`, however long the round takes (nothing kills a job after USR1: it is
///   Slurm's `--signal=B:USR1@N` warning, or a person's `scancel -b -s USR1`).
/// - SIGTERM, SIGINT, and SIGUSR2 (the form of TERM that scripts/mpirun.sh and jobs/lib.sh pass on,
///   because mpirun and srun forward USR2 but kill the job on TERM): the same, but within a grace
///   period counted from the first of them (`pilot train --stop-grace`, PILOT_STOP_GRACE, default
///   20 s), because whoever sends TERM kills the processes soon after (Slurm after KillWait, 30 s by
///   default). If the round in progress has not committed by then, a watchdog thread ends every
///   rank with `_exit(75)`; rank 0 first says which round was lost and which is the last committed.
///
/// The decision to stop after a round is collective (a max-allreduce of the flags after every
/// commit), so all ranks stop after the same round whichever rank got the signal. The watchdog is
/// per rank and needs no communication: a rank blocked in a collective cannot answer one, and every
/// rank got the signal from the same launcher at about the same time. `_exit` during a commit is
/// safe: every file is written to a temporary name and renamed, and `latest` names a round only
/// after all of its files are in place, so the previous round stays the last committed one.
public enum StopSignal {
    /// EX_TEMPFAIL: "stopped on request; resume with --resume".
    public static let exitCode: Int32 = 75
    /// Seconds a TERM-class stop may take when neither `--stop-grace` nor PILOT_STOP_GRACE says;
    /// 10 s less than Slurm's default KillWait (30 s), which leaves srun and the batch script time
    /// to requeue the job before the KILL.
    public static let defaultGrace: Double = 20

    // Written by the signal handler: plain sig_atomic_t, nothing else is async-signal-safe.
    /// Any stop signal arrived.
    nonisolated(unsafe) static var flag: sig_atomic_t = 0
    /// The first TERM-class signal (TERM, INT, USR2), 0 if none: it starts the grace period.
    nonisolated(unsafe) static var urgent: sig_atomic_t = 0
    /// The first stop signal of any kind, for the messages.
    nonisolated(unsafe) static var first: sig_atomic_t = 0

    /// What the watchdog needs to know, set by the main thread.
    struct Progress: Sendable {
        var grace = StopSignal.defaultGrace
        var rank = 0
        var runDirectory: String?
        /// The round being computed, 0 before the first round of this start.
        var roundInProgress = 0
        /// The round loop has decided (and said) to stop, or the run is complete: the watchdog
        /// only ends the process with this status if its exit takes past the deadline.
        var settled: Int32?
    }
    static let progress = Mutex(Progress())

    /// Installs the handlers and starts the watchdog thread. `grace`: seconds after the first
    /// TERM-class signal; `rank`: this process's rank (only rank 0 prints the watchdog's message).
    public static func install(grace: Double = defaultGrace, rank: Int = 0) {
        progress.withLock { $0.grace = grace; $0.rank = rank }
        let handler: @convention(c) (Int32) -> Void = { sig in
            if StopSignal.first == 0 { StopSignal.first = sig }
            if sig != SIGUSR1 && StopSignal.urgent == 0 { StopSignal.urgent = sig }
            StopSignal.flag = 1
        }
        for sig in [SIGTERM, SIGINT, SIGUSR1, SIGUSR2] { signal(sig, handler) }
        // A launcher may start us with these signals blocked (the mask is inherited); unblock them.
        var set = sigset_t()
        sigemptyset(&set)
        for sig in [SIGTERM, SIGINT, SIGUSR1, SIGUSR2] { sigaddset(&set, sig) }
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
        startWatchdog()
    }

    /// The grace period of a TERM-class stop: `--stop-grace`, else PILOT_STOP_GRACE, else 20 s.
    public static func grace(option: Double?, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> Double {
        if let option { return option }
        guard let text = environment["PILOT_STOP_GRACE"], !text.isEmpty else { return defaultGrace }
        guard let value = Double(text), value > 0, value.isFinite else {
            throw PilotError.invalidArgument("PILOT_STOP_GRACE='\(text)': expected a number of seconds > 0")
        }
        return value
    }

    public static var requested: Bool { flag != 0 }
    /// For tests.
    public static func request() { flag = 1 }
    public static func clear() { flag = 0; urgent = 0; first = 0 }

    /// The run directory the watchdog's message names.
    public static func setRunDirectory(_ path: String) { progress.withLock { $0.runDirectory = path } }
    static func setRoundInProgress(_ round: Int) { progress.withLock { $0.roundInProgress = round } }
    /// The round loop has stopped after a commit (75) or finished the run (0) and said so.
    static func settle(_ status: Int32) { progress.withLock { $0.settled = $0.settled ?? status } }

    /// "SIGTERM" for the number, as the messages name it.
    static func name(_ sig: Int32) -> String {
        switch sig {
        case SIGTERM: "SIGTERM"
        case SIGINT: "SIGINT"
        case SIGUSR1: "SIGUSR1"
        case SIGUSR2: "SIGUSR2"
        default: "signal \(sig)"
        }
    }

    /// The signal the messages name: the first stop signal.
    static var signalName: String { name(first != 0 ? Int32(first) : SIGUSR1) }

    // MARK: the watchdog

    private static let watchdogStarted = Atomic<Bool>(false)

    private static func startWatchdog() {
        guard watchdogStarted.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged else { return }
        let thread = Thread { StopSignal.watch() }
        thread.name = "pilot-stop-watchdog"
        thread.start()
    }

    /// Says when a stop signal arrives (rank 0); waits for a TERM-class signal, then for the grace
    /// period, and ends the process if it is still running.
    private static func watch() {
        var announced = false
        while urgent == 0 {
            if !announced && first != 0 { announce(); announced = true }
            usleep(100_000)
        }
        let deadline = Date().addingTimeInterval(progress.withLock { $0.grace })
        announce()
        while Date() < deadline { usleep(50_000) }
        expire()
    }

    /// Rank 0's line when a stop signal arrives: what will be committed, and the exit status.
    private static func announce() {
        let p = progress.withLock { $0 }
        guard p.rank == 0, p.settled == nil else { return }
        let round = p.roundInProgress > 0 ? "round \(p.roundInProgress)" : "the next round"
        let line: String
        if urgent != 0 {
            line = "\(name(Int32(urgent))): stopping; \(round) is committed if it ends within the \(seconds(p.grace)) s stop grace, and every rank exits \(exitCode) either way"
        } else {
            line = "\(signalName): stopping after \(round) is committed; every rank then exits \(exitCode)"
        }
        clearIndicator()
        Console.out(line)
    }

    /// Clears rank 0's progress line on a terminal before a line of the watchdog's.
    private static func clearIndicator() {
        if ProcessInfo.processInfo.environment["PILOT_TTY"] != "0" && Console.isTerminal(1) {
            Console.write(fd: 1, "\r\u{1B}[2K")
        }
    }

    static func seconds(_ s: Double) -> String { s == s.rounded() && s < 1e9 ? String(Int(s)) : String(s) }

    /// The grace period is over: rank 0 says what survives, every rank exits.
    private static func expire() -> Never {
        let p = progress.withLock { $0 }
        if let status = p.settled { _exit(status) }
        guard p.rank == 0 else {
            // Let rank 0 print and exit first: the launcher may kill the others once one has exited.
            usleep(500_000)
            _exit(exitCode)
        }
        // Hold `latest` still while reading it (rank 0 is the one that renames it), so the message
        // names the round that survives even if a commit is finishing right now. Never released:
        // the process ends below.
        _ = RoundCheckpoint.latestLock.lock(before: Date().addingTimeInterval(2))
        let last = p.runDirectory.flatMap { try? RoundCheckpoint.latestRound(run: $0) }
        clearIndicator()
        Console.out(expiryMessage(signal: name(Int32(urgent)), grace: p.grace, roundInProgress: p.roundInProgress,
                                  lastCommitted: last, runDirectory: p.runDirectory))
        _exit(exitCode)
    }

    /// What rank 0 prints when the grace period ends before the stop did.
    static func expiryMessage(signal: String, grace: Double, roundInProgress: Int, lastCommitted: Int?, runDirectory: String?) -> String {
        var line = "stopped by \(signal) after the \(seconds(grace)) s stop grace: "
        if roundInProgress > 0 && lastCommitted == roundInProgress {
            line += "round \(roundInProgress) is committed, but the ranks had not finished stopping"
        } else if roundInProgress > 0 {
            line += "round \(roundInProgress) was in progress and is not committed; "
            line += lastCommitted.map { "round \($0) is the last committed" } ?? "no round is committed yet"
        } else {
            line += "no round had started; " + (lastCommitted.map { "round \($0) is the last committed" } ?? "no round is committed yet")
        }
        line += "; every rank exits \(exitCode)"
        if let runDirectory {
            line += lastCommitted == nil ? "; start the run again (nothing to resume in \(runDirectory))"
                : "; resume with `pilot train --resume \(runDirectory)`"
        }
        return line
    }
}
