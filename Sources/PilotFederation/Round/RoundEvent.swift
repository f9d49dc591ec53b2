import PilotJob

/// What a run tells its user, as typed events: the library reports them, the CLI prints them
/// (rank 0 only receives any).
public enum RoundEvent: Sendable {
    /// A phase of a round started (e.g. to draw a progress indicator on a terminal).
    case phase(round: Int, RoundPhase)
    /// A one-off message: truncated examples, a rejected update, a resume, a warning.
    case message(String)
    /// A round was committed (checkpoint and metrics.h5 written).
    case committed(CommittedRound)
}

public enum RoundPhase: String, Sendable {
    case train, communicate = "communicate + aggregate", evaluate, checkpoint
}

/// A committed round, as the progress line shows it.
public struct CommittedRound: Sendable {
    public var round: Int
    public var rounds: Int
    public var stage: Int
    /// Every client's row, in client order.
    public var rows: [ClientRoundMetrics]
    public var clientTasks: [Int]
    public var taskNames: [String]
    public var seconds: Double
    /// DP's ε after this round, and its δ (nil without DP).
    public var epsilon: (value: Double, delta: Double)?

    /// The one-line summary (`RoundProgress`).
    public var line: String {
        RoundProgress.line(round: round, rounds: rounds, stage: stage, rows: rows, tasks: clientTasks, taskNames: taskNames, seconds: seconds)
            + (epsilon.map { String(format: " | DP ε %.3g (δ %.0e)", $0.value, $0.delta) } ?? "")
    }
}
