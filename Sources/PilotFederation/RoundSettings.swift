import PilotCore
import PilotModel

/// The settings the round driver uses, decoded once from the validated config into typed values
/// (the schema in RunConfig.swift refuses unknown keys, with "did you mean", before this runs).
public struct RoundSettings: Sendable, Equatable {
    public var seed: Int
    public var rounds: Int
    public var evalEvery: Int
    public var epochs: Int
    public var maxSteps: Int
    public var batchSize: Int
    public var warmupSteps: Int
    public var weightDecay: Double
    public var maxGradNorm: Double
    public var evalFirstExample: Int
    public var evalMaxExamples: Int
    public var evalMaxNewTokens: Int
    public var evalBatchSize: Int
    /// 0: spread the clients over the world size (`Placement`).
    public var clientsPerRank: Int
    /// Which clients train in a round.
    public var sampling: ClientSampling
    /// Which clients are evaluated in an evaluation round.
    public var evalSampling: ClientSampling

    public init(_ c: RunConfig) {
        seed = c.int("run.seed")
        rounds = c.int("run.rounds")
        evalEvery = c.int("run.eval_every")
        epochs = c.int("train.epochs")
        maxSteps = c.int("train.max_steps")
        batchSize = c.int("train.batch_size")
        warmupSteps = c.int("train.warmup_steps")
        weightDecay = c.double("train.weight_decay")
        maxGradNorm = c.double("train.max_grad_norm")
        evalFirstExample = c.int("eval.first_example")
        evalMaxExamples = c.int("eval.max_examples")
        evalMaxNewTokens = c.int("eval.max_new_tokens")
        evalBatchSize = c.int("eval.batch_size")
        clientsPerRank = c.optionalInt("run.clients_per_rank") ?? 0
        sampling = ClientSampling(fraction: c.optionalDouble("run.fraction") ?? 1, minClients: c.optionalInt("run.min_clients") ?? 0,
                                  seed: UInt64(seed))
        evalSampling = ClientSampling(fraction: c.optionalDouble("eval.fraction") ?? 1, minClients: 1, seed: UInt64(seed))
    }

    /// Whether `round` is evaluated: every `evalEvery` rounds and always the last.
    public func evaluates(round: Int) -> Bool { round == rounds || (evalEvery > 0 && round % evalEvery == 0) }

    /// The optimizer every client's model gets.
    public var optimizer: AdamW.Parameters {
        var opt = AdamW.Parameters()
        opt.weightDecay = Float(weightDecay)
        opt.maxGradNorm = maxGradNorm > 0 ? Float(maxGradNorm) : nil
        return opt
    }
}
