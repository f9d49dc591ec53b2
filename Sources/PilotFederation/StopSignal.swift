#if canImport(Glibc)
import Glibc
#endif

/// SIGTERM and SIGUSR1 (what schedulers send before preemption or at the time limit) set a flag;
/// the round loop finishes the current round, commits its checkpoint, and every rank exits with
/// `StopSignal.exitCode`. The decision is collective (a max-allreduce of the flags), so all ranks
/// stop after the same round whichever rank got the signal.
public enum StopSignal {
    /// EX_TEMPFAIL: "stopped on request; resume with --resume".
    public static let exitCode: Int32 = 75

    nonisolated(unsafe) static var flag: sig_atomic_t = 0

    public static func install() {
        let handler: @convention(c) (Int32) -> Void = { _ in StopSignal.flag = 1 }
        signal(SIGTERM, handler)
        signal(SIGUSR1, handler)
        // A launcher may start us with these signals blocked (the mask is inherited); unblock them.
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGTERM)
        sigaddset(&set, SIGUSR1)
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
    }

    public static var requested: Bool { flag != 0 }
    /// For tests.
    public static func request() { flag = 1 }
    public static func clear() { flag = 0 }
}
