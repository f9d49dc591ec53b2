import PilotCore
import PilotModel

/// Hyper-parameters of central pretraining (`pilot pretrain`). Defaults are calibrated for the
/// default 'small' scenario on a 2-core machine (docs/pretraining.md): about 3–4 minutes under
/// `mpirun -np 2`, and a base that has learnt the answer formats but is far from solving the tasks.
public struct PretrainingParameters: Codable, Sendable, Equatable {
    /// Optimizer steps.
    public var steps = 250
    /// Global batch (sequences per step, summed over ranks).
    public var batchSize = 32
    /// Peak learning rate of the warm-up + cosine schedule.
    public var learningRate: Float = 1e-3
    /// Learning rate at the end of the cosine, as a fraction of the peak.
    public var minLearningRateFraction: Float = 0.1
    /// Linear warm-up steps.
    public var warmupSteps = 25
    /// AdamW decoupled weight decay.
    public var weightDecay: Float = 0.01
    /// Global gradient-norm clip (≤ 0 disables).
    public var maxGradNorm: Float = 1.0
    /// Seeds the initial weights and the example order.
    public var seed: UInt64 = 1
    /// Report progress every this many steps.
    public var logEvery = 25

    public init() {}

    public func validate() throws {
        func need(_ ok: Bool, _ msg: String) throws { if !ok { throw PilotError.invalidArgument("pretraining: \(msg)") } }
        try need(steps >= 1, "steps must be ≥ 1, not \(steps)")
        try need(batchSize >= 1, "batch size must be ≥ 1, not \(batchSize)")
        try need(learningRate > 0 && learningRate.isFinite, "learning rate must be positive, not \(learningRate)")
        try need(minLearningRateFraction >= 0 && minLearningRateFraction <= 1, "min learning rate fraction must be in [0, 1]")
        try need(warmupSteps >= 0, "warm-up steps must be ≥ 0")
        try need(weightDecay >= 0, "weight decay must be ≥ 0")
        try need(logEvery >= 1, "log interval must be ≥ 1")
    }

    public var schedule: LRSchedule {
        LRSchedule(peak: learningRate, minimum: learningRate * minLearningRateFraction, warmupSteps: warmupSteps, totalSteps: steps)
    }

    enum CodingKeys: String, CodingKey {
        case steps, batchSize = "batch_size", learningRate = "learning_rate"
        case minLearningRateFraction = "min_learning_rate_fraction", warmupSteps = "warmup_steps"
        case weightDecay = "weight_decay", maxGradNorm = "max_grad_norm", seed, logEvery = "log_every"
    }
}
