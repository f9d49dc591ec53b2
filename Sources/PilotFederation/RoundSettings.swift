import Foundation
import PilotCore
import PilotJob
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
    /// Which model an evaluation scores (`eval.when`; after the aggregation by default).
    public var evalWhen: EvalWhen
    public var robust: RobustSettings
    /// nil: no differential privacy.
    public var dp: DPSettings?
    public var faults: FaultSettings
    /// Refuse (rather than warn) a resume on another BLAS kernel or thread count.
    public var strictReproducibility: Bool
    /// Cache a CLIP tower's features beside each shard (`model.cache_vision_features`; nil: yes).
    public var cacheVisionFeatures: Bool?
    /// Recompute each LM layer in the backward pass instead of storing its activations (`train.recompute_activations`).
    public var recomputeActivations: Bool

    public init(_ s: RunSettings) {
        seed = s.run.seed
        rounds = s.run.rounds
        evalEvery = s.run.evalEvery
        epochs = s.train.epochs
        maxSteps = s.train.maxSteps
        batchSize = s.train.batchSize
        warmupSteps = s.train.warmupSteps
        weightDecay = s.train.weightDecay
        maxGradNorm = s.train.maxGradNorm
        evalFirstExample = s.eval.firstExample
        evalMaxExamples = s.eval.maxExamples
        evalMaxNewTokens = s.eval.maxNewTokens
        evalBatchSize = s.eval.batchSize
        clientsPerRank = s.run.clientsPerRank ?? 0
        sampling = ClientSampling(fraction: s.run.fraction ?? 1, minClients: s.run.minClients ?? 0, seed: UInt64(seed))
        evalSampling = ClientSampling(fraction: s.eval.fraction ?? 1, minClients: 1, seed: UInt64(seed))
        evalWhen = s.eval.when ?? .after
        robust = RobustSettings(maxUpdateNorm: s.robust.maxUpdateNorm, clip: s.robust.onBad == "clip", aggregator: s.robust.rule)
        dp = s.dp.clip.map { DPSettings(clip: $0, noiseMultiplier: s.dp.noiseMultiplier ?? 1, delta: s.dp.delta ?? 1e-5) }
        strictReproducibility = s.run.strictReproducibility ?? false
        cacheVisionFeatures = s.model.cacheVisionFeatures
        recomputeActivations = s.train.recomputeActivations ?? false
        let f = s.faults
        faults = FaultSettings(nanClient: f.nanClient, nanRound: f.nanRound, scaleClient: f.scaleClient, scaleFactor: f.scaleFactor ?? 1e6,
                               failClient: f.failClient, failRound: f.failRound, killPoint: f.killPoint, killRound: f.killRound ?? 1,
                               stallRound: f.stallRound, stallSeconds: f.stallSeconds ?? 60)
    }

    /// Seed of client k's data order in a round (counter-based, so nothing needs saving).
    public func dataSeed(round: Int, client: Int) -> UInt64 {
        var s = SplitMix64(seed: UInt64(seed) &* 0x9E37_79B9 &+ UInt64(round) &* 1_000_003 &+ UInt64(client))
        return s.next()
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
    public init(clip: Double, noiseMultiplier: Double, delta: Double) {
        self.clip = clip; self.noiseMultiplier = noiseMultiplier; self.delta = delta
    }
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
    public var stallRound: Int?
    public var stallSeconds: Double

    public init(nanClient: Int? = nil, nanRound: Int? = nil, scaleClient: Int? = nil, scaleFactor: Double = 1e6,
                failClient: Int? = nil, failRound: Int? = nil, killPoint: String? = nil, killRound: Int = 1,
                stallRound: Int? = nil, stallSeconds: Double = 60) {
        self.nanClient = nanClient; self.nanRound = nanRound; self.scaleClient = scaleClient; self.scaleFactor = scaleFactor
        self.failClient = failClient; self.failRound = failRound; self.killPoint = killPoint; self.killRound = killRound
        self.stallRound = stallRound; self.stallSeconds = stallSeconds
    }

    /// Sleeps `stallSeconds` on rank 1 at the start of round `stallRound` (the others then wait for
    /// it in the round's collectives): a round that outlasts the stop grace, whatever the signal.
    func stall(round: Int, rank: Int) {
        guard stallRound == round, rank == 1, stallSeconds > 0 else { return }
        Console.error("pilot: fault injection: rank 1 stalls round \(round) for \(stallSeconds) s")
        let end = Date().addingTimeInterval(stallSeconds)
        while Date() < end { usleep(50_000) }
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
