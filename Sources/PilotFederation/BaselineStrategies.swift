import PilotCore
import PilotModel

/// The single-stage baselines (DESIGN §4): every client trains one connector and LoRA from the
/// base, and the next round starts from the client's state. Subclasses define what crosses the
/// network.
public class SingleStageStrategy {
    let learningRate: Double
    let variant: ConnectorVariant

    public init(learningRate: Double, variant: ConnectorVariant = .mlp) {
        self.learningRate = learningRate; self.variant = variant
    }

    public func modelSpec(round: Int, client: Int, federation: Federation) -> ModelSpec {
        ModelSpec(variant: variant, options: ConnectorOptions(), trainable: .variantDefault, learningRate: learningRate, stage: 0)
    }

    public func prepare(model: MLLM, round: Int, client: Int, state: TensorDict?, federation: Federation) throws {
        if let state { try model.assign(state) }
    }
}

/// `local`: every client trains on its own data; nothing is sent.
public final class LocalStrategy: SingleStageStrategy, FederatedStrategy {
    public var name: String { "local" }

    /// Nothing is aggregated: every client keeps what it trained.
    public func aggregate(round: Int, updates: [ClientUpdate]) -> Aggregation<NoServerState> {
        Aggregation(results: updates.map(\.tensors.values), serverState: NoServerState())
    }

    public func communicate(round: Int, model: MLLM?, federation: Federation) throws -> TensorDict? {
        try model?.trainableTensors()
    }
}

/// A method whose server averages some of the trainable tensors (`sharedNames`) with fixed client
/// weights, in client order, and sends the mean back to every client; the other trainable tensors
/// stay on their client.
public class AveragingStrategy: SingleStageStrategy {
    /// The tensors that cross the network (a subset of the trainable ones), in buffer order.
    func sharedNames(_ model: MLLM) -> [String] { model.parameters.trainableNames }
    /// A client's weight in the mean: n_k by default.
    func weight(_ update: ClientUpdate) -> Double { Double(update.examples) }

    /// The server's step, pure: the weighted mean of the updates in client order, for every client.
    public func aggregate(round: Int, updates: [ClientUpdate]) throws -> Aggregation<NoServerState> {
        let mean = try Aggregate.weightedMean(updates.map(\.tensors.values), weights: updates.map(weight))
        return Aggregation(results: Array(repeating: mean, count: updates.count), serverState: NoServerState())
    }

    public func communicate(round: Int, model: MLLM?, federation: Federation) throws -> TensorDict? {
        let mine = try model.map { try NamedTensors(model: $0, names: sharedNames($0)) }
        // Every client gets the same mean, so the transport broadcasts one copy.
        let global = try federation.gatherReduceBroadcast(mine?.values) { vectors in
            try self.aggregate(round: round, updates: federation.updates(vectors)).results[0]
        }
        guard let model, let mine else { return nil }
        var state = try model.trainableTensors()
        state.merge(try mine.with(values: global).dictionary()) { _, new in new }
        return state
    }
}

/// `fedavg` (McMahan et al., 2017): the n_k-weighted mean of connector and LoRA.
public final class FedAvgStrategy: AveragingStrategy, FederatedStrategy {
    public var name: String { "fedavg" }
}

/// `fedprox` (Li et al., 2020): FedAvg's server; each client adds (μ/2)‖w − w_global‖² over its
/// trainable parameters, anchored at the model it received.
public final class FedProxStrategy: AveragingStrategy, FederatedStrategy {
    public let mu: Float
    public var name: String { "fedprox" }

    public init(learningRate: Double, mu: Float) {
        self.mu = mu
        super.init(learningRate: learningRate)
    }

    public override func prepare(model: MLLM, round: Int, client: Int, state: TensorDict?, federation: Federation) throws {
        try super.prepare(model: model, round: round, client: client, state: state, federation: federation)
        let anchor = model.parameters.trainable.copy()
        model.proximal = mu > 0 ? ProximalTerm(mu: mu, anchor: anchor) : nil
    }
}

/// `shepherd` (Zhang et al., 2024, "Towards building the federated GPT"): only the LoRA adapters
/// are averaged (n_k-weighted), A and B each on its own, not their product; the connector stays
/// on its client.
public final class ShepherdStrategy: AveragingStrategy, FederatedStrategy {
    public var name: String { "shepherd" }
    override func sharedNames(_ model: MLLM) -> [String] { model.names(inGroup: "lora") }
}

/// `feddpa` (FedDPA-T, Yang et al., 2024): two LoRAs on every projection. The global one is
/// averaged uniformly over the clients; the local one and the connector never leave the client.
/// At inference each test instance weighs the local LoRA by `FedDPAInference.weight`.
public final class FedDPAStrategy: AveragingStrategy, FederatedStrategy {
    /// Local training prompts whose states form the support set of the instance-wise weighting.
    public let supportPrompts: Int
    public var name: String { "feddpa" }

    public init(learningRate: Double, supportPrompts: Int) {
        self.supportPrompts = supportPrompts
        super.init(learningRate: learningRate, variant: .fedDPA)
    }

    override func sharedNames(_ model: MLLM) -> [String] { model.names(inGroup: "lora") }
    override func weight(_ update: ClientUpdate) -> Double { 1 }

    /// Instance-wise weighting of the local LoRA against the client's training prompts.
    public func evaluate(_ c: EvaluationContext) throws -> [String: Double] {
        let r = try FedDPAInference.evaluate(model: c.model, examples: c.examples, support: c.training, supportCount: supportPrompts,
                                             codec: c.codec, task: c.task, batchSize: c.batchSize, maxNewTokens: c.maxNewTokens)
        return ["eval_score": r.evaluation.metric.score,
                "eval_local_weight": r.weights.map(Double.init).reduce(0, +) / Double(max(r.weights.count, 1))]
    }
}

/// `fedadam` (Reddi et al., 2021): clients send their update x_k − x; the server takes the
/// n_k-weighted mean as the pseudo-gradient, steps its Adam state (`FedAdamServer`) and
/// broadcasts the step u; every client sets x ← x + u. All clients hold the same x, so only the
/// server keeps optimizer state (m, v, t; checkpointed).
public final class FedAdamStrategy: SingleStageStrategy, FederatedStrategy {
    var server: FedAdamServer
    /// Client: the global model x as the round began (what the update is measured from).
    var roundStart: [Float] = []
    public var name: String { "fedadam" }

    public init(learningRate: Double, hyper: FedAdamServer.Hyper) {
        server = FedAdamServer(hyper: hyper)
        super.init(learningRate: learningRate)
    }

    public override func prepare(model: MLLM, round: Int, client: Int, state: TensorDict?, federation: Federation) throws {
        try super.prepare(model: model, round: round, client: client, state: state, federation: federation)
        roundStart = model.parameters.trainable.values
    }

    public func communicate(round: Int, model: MLLM?, federation: Federation) throws -> TensorDict? {
        var delta: [Float]? = nil
        if let model {
            let x = model.parameters.trainable.values
            guard x.count == roundStart.count else { throw PilotError.message("fedadam: the round's start model was not recorded") }
            delta = zip(x, roundStart).map { $0 - $1 }
        }
        let step = try federation.gatherReduceBroadcast(delta) { deltas in
            let out = try Self.aggregate(round: round, updates: federation.updates(deltas), serverState: self.server)
            self.server = out.serverState
            return out.results[0]
        }
        guard let model else { return nil }
        guard step.count == roundStart.count else { throw PilotError.message("fedadam: the server's step has \(step.count) values, the model \(roundStart.count)") }
        let next = zip(roundStart, step).map { $0 + $1 }
        return try NamedTensors(model: model, names: model.parameters.trainableNames).with(values: next).dictionary()
    }

    /// The server's step, pure: the n_k-weighted mean of the clients' updates x_k − x is the
    /// pseudo-gradient of one Adam step; every client gets the step u (x ← x + u).
    public static func aggregate(round: Int, updates: [ClientUpdate], serverState: FedAdamServer) throws -> Aggregation<FedAdamServer> {
        var server = serverState
        let mean = try Aggregate.weightedMean(updates.map(\.tensors.values), weights: updates.map { Double($0.examples) })
        let step = try server.update(delta: mean)
        return Aggregation(results: Array(repeating: step, count: updates.count), serverState: server)
    }

    public func serverState() -> TensorDict { server.state }
    public func restoreServerState(_ state: TensorDict) throws { try server.restore(state) }
}

/// `centralized`: the reference trained on the union of the clients' data, data-parallel over the
/// client ranks. Every step each client computes the gradient of its own batch; the gradients are
/// summed in rank order, weighted by target tokens, so every client applies the gradient of the
/// union batch and all clients hold the same model (one model, as if one job trained on all the
/// data with a K-times larger batch). Nothing is aggregated between rounds; each client is
/// evaluated on its own task's test split.
public final class CentralizedStrategy: SingleStageStrategy, FederatedStrategy {
    public var name: String { "centralized" }
    public var dataParallel: Bool { true }

    /// Nothing is aggregated between rounds (the gradients were summed every step).
    public func aggregate(round: Int, updates: [ClientUpdate]) -> Aggregation<NoServerState> {
        Aggregation(results: updates.map(\.tensors.values), serverState: NoServerState())
    }

    public func communicate(round: Int, model: MLLM?, federation: Federation) throws -> TensorDict? {
        try model?.trainableTensors()
    }
}
