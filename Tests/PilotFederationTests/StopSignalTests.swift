import Foundation
import PilotCore
@testable import PilotFederation
import Testing

/// #34 item 2: what rank 0 says when the stop grace runs out, and where the grace comes from.
@Suite("stop signal messages and grace")
struct StopSignalTests {
    @Test("the expiry message names the lost round, the surviving one, the exit status and how to go on")
    func expiryMessage() {
        let lost = StopSignal.expiryMessage(signal: "SIGTERM", grace: 20, roundInProgress: 3, lastCommitted: 2, runDirectory: "runs/x")
        #expect(lost == "stopped by SIGTERM after the 20 s stop grace: round 3 was in progress and is not committed; round 2 is the last committed; every rank exits 75; resume with `pilot train --resume runs/x`")
        let committed = StopSignal.expiryMessage(signal: "SIGUSR2", grace: 2.5, roundInProgress: 3, lastCommitted: 3, runDirectory: "runs/x")
        #expect(committed.hasPrefix("stopped by SIGUSR2 after the 2.5 s stop grace: round 3 is committed, but the ranks had not finished stopping; every rank exits 75"))
        let nothing = StopSignal.expiryMessage(signal: "SIGTERM", grace: 20, roundInProgress: 1, lastCommitted: nil, runDirectory: "runs/x")
        #expect(nothing.contains("round 1 was in progress and is not committed; no round is committed yet"))
        #expect(nothing.hasSuffix("start the run again (nothing to resume in runs/x)"))
        let early = StopSignal.expiryMessage(signal: "SIGINT", grace: 20, roundInProgress: 0, lastCommitted: 4, runDirectory: nil)
        #expect(early == "stopped by SIGINT after the 20 s stop grace: no round had started; round 4 is the last committed; every rank exits 75")
    }

    @Test("the grace: --stop-grace, else PILOT_STOP_GRACE, else 20 s; a bad value is refused")
    func grace() throws {
        #expect(try StopSignal.grace(option: 7, environment: ["PILOT_STOP_GRACE": "12.5"]) == 7)
        #expect(try StopSignal.grace(option: nil, environment: [:]) == StopSignal.defaultGrace)
        #expect(try StopSignal.grace(option: nil, environment: ["PILOT_STOP_GRACE": "12.5"]) == 12.5)
        for bad in ["soon", "0", "-3", "inf"] {
            #expect(throws: PilotError.self) { try StopSignal.grace(option: nil, environment: ["PILOT_STOP_GRACE": bad]) }
        }
    }
}
