import CMPI
import PilotCore
#if canImport(Glibc)
import Glibc
#endif

/// How a rank waits for a collective to finish.
///
/// Open MPI completes a blocking collective by polling: a rank that waits (the server while its
/// clients train, a client rank whose clients finished first) keeps a core busy calling
/// `sched_yield`, even with `mpi_yield_when_idle`. With more ranks than cores, as on a workstation
/// under `scripts/mpirun.sh`, that core is taken from the ranks that compute: measured with perf on
/// 3 ranks and 2 cores, the waiting server used about half a core for the whole round.
///
/// So every collective of `MPICommunicator` is posted as its nonblocking twin (MPI-3) and completed
/// here: `MPI_Test` in a short spin (a collective between ranks that are all ready ends there),
/// then `MPI_Test` between sleeps that double from 20 µs to 1 ms. A long wait costs one wake-up
/// per millisecond; a collective ends at most 1 ms after its data arrived. The data are what the
/// blocking call gives: gathers and broadcasts copy bytes, and the one reduction MPI does itself
/// (`MPI_Iallreduce`) is used only for max and integer sums, which are exact in any order.
///
/// `PILOT_MPI_WAIT=busy` completes with `MPI_Wait` instead (Open MPI's own polling), for a
/// cluster with a core per rank where a millisecond matters more than the core.
public enum IdleWait {
    public enum Mode: String, Sendable { case idle, busy }

    /// From `PILOT_MPI_WAIT` (idle unless it says busy; anything else is refused when MPI starts).
    public static let mode: Mode = Mode(rawValue: ProcessEnvironment.all["PILOT_MPI_WAIT"] ?? "idle") ?? .idle

    /// Polls before the first sleep, and the sleep's bounds in nanoseconds.
    static let spinPolls = 64
    static let firstSleep = 20_000
    static let longestSleep = 1_000_000

    /// Checks `PILOT_MPI_WAIT` (called once when MPI starts).
    static func validateEnvironment() throws {
        if let v = ProcessEnvironment.all["PILOT_MPI_WAIT"], Mode(rawValue: v) == nil {
            throw PilotError.invalidArgument("PILOT_MPI_WAIT=\(v): use idle (the default: a waiting rank sleeps between MPI_Test calls) or busy (MPI_Wait, Open MPI's polling)")
        }
    }

    /// Waits for `request` by `mode`; returns MPI's error code.
    static func complete(_ request: UnsafeMutablePointer<MPI_Request?>) -> Int32 {
        if mode == .busy { return MPI_Wait(request, pilot_MPI_STATUS_IGNORE()) }
        var done: Int32 = 0
        var polls = 0
        var sleep = firstSleep
        while true {
            let rc = MPI_Test(request, &done, pilot_MPI_STATUS_IGNORE())
            if rc != pilot_MPI_SUCCESS() || done != 0 { return rc }
            polls += 1
            if polls < spinPolls { continue }
            var ts = timespec(tv_sec: 0, tv_nsec: sleep)
            nanosleep(&ts, nil)
            sleep = min(sleep * 2, longestSleep)
        }
    }
}
