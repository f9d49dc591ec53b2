import Foundation
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
    public var robust: RobustSettings
    /// nil: no differential privacy.
    public var dp: DPSettings?
    public var faults: FaultSettings

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
        robust = RobustSettings(maxUpdateNorm: c.optionalDouble("robust.max_update_norm"),
                                clip: c.optionalString("robust.on_bad") == "clip",
                                aggregator: Self.aggregator(c))
        dp = c.optionalDouble("dp.clip").map { DPSettings(clip: $0, noiseMultiplier: c.optionalDouble("dp.noise_multiplier") ?? 1,
                                                           delta: c.optionalDouble("dp.delta") ?? 1e-5) }
        faults = FaultSettings(nanClient: c.optionalInt("faults.nan_client"), nanRound: c.optionalInt("faults.nan_round"),
                               scaleClient: c.optionalInt("faults.scale_client"), scaleFactor: c.optionalDouble("faults.scale_factor") ?? 1e6,
                               failClient: c.optionalInt("faults.fail_client"), failRound: c.optionalInt("faults.fail_round"),
                               killPoint: c.optionalString("faults.kill_point"), killRound: c.optionalInt("faults.kill_round") ?? 1)
    }

    static func aggregator(_ c: RunConfig) -> RobustAggregator {
        switch c.optionalString("robust.aggregator") ?? "mean" {
        case "median": return .median
        case "trimmed_mean": return .trimmedMean(beta: c.optionalDouble("robust.trim") ?? 0.2)
        case "krum": return .krum(f: c.optionalInt("robust.byzantine_f") ?? 1)
        case "multi_krum": return .multiKrum(f: c.optionalInt("robust.byzantine_f") ?? 1, m: c.optionalInt("robust.krum_m") ?? 2)
        default: return .mean
        }
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

/// What the server checks and how it averages (`robust.*`).
public struct RobustSettings: Sendable, Equatable {
    /// Bound on an update's L2 distance from the coordinate-wise median of its layout group.
    public var maxUpdateNorm: Double?
    /// true: clip an update beyond the bound back to it; false: reject it.
    public var clip: Bool
    /// Every strategy's averaging step.
    public var aggregator: RobustAggregator
    public init(maxUpdateNorm: Double? = nil, clip: Bool = false, aggregator: RobustAggregator = .mean) {
        self.maxUpdateNorm = maxUpdateNorm; self.clip = clip; self.aggregator = aggregator
    }
}

/// Client-level differential privacy (DP-FedAvg, McMahan et al. 2018): `dp.*`.
public struct DPSettings: Sendable, Equatable {
    /// C: the L2 bound on each client's update.
    public var clip: Double
    /// σ: the noise's standard deviation is σ·C.
    public var noiseMultiplier: Double
    public var delta: Double
}

/// Fault injection for tests (`faults.*`, off by default; not part of the run's identity).
public struct FaultSettings: Sendable, Equatable {
    public var nanClient: Int?
    public var nanRound: Int?
    public var scaleClient: Int?
    public var scaleFactor: Double
    public var failClient: Int?
    public var failRound: Int?
    public var killPoint: String?
    public var killRound: Int

    public init(nanClient: Int? = nil, nanRound: Int? = nil, scaleClient: Int? = nil, scaleFactor: Double = 1e6,
                failClient: Int? = nil, failRound: Int? = nil, killPoint: String? = nil, killRound: Int = 1) {
        self.nanClient = nanClient; self.nanRound = nanRound; self.scaleClient = scaleClient; self.scaleFactor = scaleFactor
        self.failClient = failClient; self.failRound = failRound; self.killPoint = killPoint; self.killRound = killRound
    }

    func poisons(client: Int, round: Int) -> Bool { nanClient == client && (nanRound == nil || nanRound == round) }
    func fails(client: Int, round: Int) -> Bool { failClient == client && (failRound == nil || failRound == round) }

    /// Kills this process (SIGKILL, no cleanup) when `point` of round `round`'s commit is the configured one.
    func kill(at point: String, round: Int) {
        guard killPoint == point && killRound == round else { return }
        Console.error("pilot: fault injection: killed at \(point) of round \(round)")
        _ = Foundation.kill(getpid(), SIGKILL)
    }
}
