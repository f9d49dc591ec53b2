import PilotCore
import PilotJob
import PilotModel
import PilotTensor

/// The single-stage baselines (docs/design.md §4): every client trains one connector and LoRA from the
/// base, and the next round starts from the client's state. Subclasses define what crosses the
/// network.
public class SingleStageStrategy {
    let learningRate: Double
    let variant: ConnectorVariant
    /// The averaging step (`robust.aggregator`): the n_k-weighted mean unless a robust rule is chosen.
    public let aggregator: RobustAggregator

    public init(learningRate: Double, variant: ConnectorVariant = .mlp, aggregator: RobustAggregator = .mean) {
        self.learningRate = learningRate; self.variant = variant; self.aggregator = aggregator
    }

    public func modelSpec(round: Int, client: Int, roster: Roster) -> ModelSpec {
        ModelSpec(variant: variant, options: ConnectorOptions(), trainable: .variantDefault, learningRate: learningRate, stage: 0)
    }

    public func prepare(model: MLLM, round: Int, client: Int, state: NamedTensors, roster: Roster) throws {
        try model.assign(state)
    }

    /// Nothing crosses the network: the client keeps what it trained.
    func keepEverything(_ trained: TrainedClient) throws -> LocalOutcome {
        LocalOutcome(update: nil, kept: try trained.model.trainableTensors())
    }

    /// The log line of a round whose rule fell back to the median (too few updates for it); none otherwise.
    func fallbackNotes(round: Int, rule: RobustAggregator, updates: [ClientUpdate]) -> [String] {
        rule == aggregator ? [] : [aggregator.fallbackNote(round: round, group: "the global average", clients: updates.map(\.client))]
    }

    /// Nothing is aggregated.
    public func aggregate(round: Int, updates: [ClientUpdate], serverState: NamedTensors, roster: Roster) throws -> RoundResult {
        RoundResult()
    }
}

/// `local`: every client trains on its own data; nothing is sent.
public final class LocalStrategy: SingleStageStrategy, FederatedStrategy {
    public var name: String { "local" }
    public var exchanges: Bool { false }
    public func outcome(of trained: TrainedClient, roster: Roster) throws -> LocalOutcome { try keepEverything(trained) }
}

/// A method whose server averages some of the trainable tensors (`sharedNames`) with fixed client
/// weights, in client order, and sends the mean back to every client; the other trainable tensors
/// stay on their client.
public class AveragingStrategy: SingleStageStrategy {
    /// The tensors that cross the network (a subset of the trainable ones), in buffer order.
    func sharedNames(_ model: MLLM) -> [String] { model.parameters.trainableNames }
    /// A client's weight in the mean: n_k by default.
    func weight(_ update: ClientUpdate) -> Double { Double(update.examples) }

    /// The update: the shared tensors; the client keeps every trainable tensor (the shared ones
    /// are replaced by the mean).
    public func outcome(of trained: TrainedClient, roster: Roster) throws -> LocalOutcome {
        let model = trained.model
        let update = ClientUpdate(client: trained.client, examples: roster.clientSamples[trained.client],
                                  tensors: try NamedTensors(model: model, names: sharedNames(model)))
        return LocalOutcome(update: update, kept: try model.trainableTensors())
    }

    /// The server's step, pure: the weighted mean of the updates in client order, shared by every client.
    public override func aggregate(round: Int, updates: [ClientUpdate], serverState: NamedTensors, roster: Roster) throws -> RoundResult {
        guard let first = updates.first else { throw PilotError.message("\(type(of: self)): no update to average") }
        for u in updates where u.tensors.names != first.tensors.names || u.tensors.shapes != first.tensors.shapes {
            throw PilotError.invalidArgument("client \(u.client) sent other tensors than client \(first.client) (\(u.tensors.names.count) vs \(first.tensors.names.count) names)")
        }
        let rule = aggregator.applicable(to: updates.count)
        let mean = try Aggregate.combine(updates.map(\.tensors.values), weights: updates.map(weight), with: rule)
        var result = RoundResult(shared: try first.tensors.with(values: mean))
        result.notes = fallbackNotes(round: round, rule: rule, updates: updates)
        return result
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

    public init(learningRate: Double, mu: Float, aggregator: RobustAggregator = .mean) {
        self.mu = mu
        super.init(learningRate: learningRate, aggregator: aggregator)
    }

    public override func prepare(model: MLLM, round: Int, client: Int, state: NamedTensors, roster: Roster) throws {
        try super.prepare(model: model, round: round, client: client, state: state, roster: roster)
        let anchor = model.parameters.trainable.copy()
        model.penalty = mu > 0 ? ProximalTerm(mu: mu, anchor: anchor) : nil
    }
}

/// `shepherd` (Zhang et al., 2024, "Towards building the federated GPT"): only the LoRA adapters
/// are averaged (n_k-weighted), A and B each on its own, not their product; the connector stays
/// on its client.
public final class ShepherdStrategy: AveragingStrategy, FederatedStrategy {
    public var name: String { "shepherd" }
    override func sharedNames(_ model: MLLM) -> [String] { model.names(inGroup: "lora") }
}

/// `shepherd_lora`: Shepherd as published (Zhang et al., 2024): clients train LoRA only, and the
/// server averages it (n_k-weighted); the connector stays frozen at the base on every client.
/// `shepherd` above also trains a private connector every round (FedPer-style).
public final class ShepherdLoRAStrategy: AveragingStrategy, FederatedStrategy {
    public var name: String { "shepherd_lora" }
    public override func modelSpec(round: Int, client: Int, roster: Roster) -> ModelSpec {
        ModelSpec(variant: variant, options: ConnectorOptions(), trainable: .groups(["lora"]), learningRate: learningRate, stage: 0)
    }
}

/// `feddpa` (FedDPA-T, Yang et al., 2024): two LoRAs on every projection. The global one is
/// averaged uniformly over the clients; the local one and the connector never leave the client.
/// At inference each test instance weighs the local LoRA by `FedDPAInference.weight`.
public final class FedDPAStrategy: AveragingStrategy, FederatedStrategy {
    /// Local training prompts whose states form the support set of the instance-wise weighting.
    public let supportPrompts: Int
    public var name: String { "feddpa" }

    public init(learningRate: Double, supportPrompts: Int, aggregator: RobustAggregator = .mean) {
        self.supportPrompts = supportPrompts
        super.init(learningRate: learningRate, variant: .dualLoRA, aggregator: aggregator)
    }

    override func sharedNames(_ model: MLLM) -> [String] { model.names(inGroup: "lora") }
    override func weight(_ update: ClientUpdate) -> Double { 1 }

    /// Instance-wise weighting of the local LoRA against the client's training prompts.
    public func evaluate(_ c: EvaluationContext) throws -> [String: Double] {
        let r = try FedDPAInference.evaluate(model: c.model, prepared: c.examples, support: c.training, supportCount: supportPrompts,
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
    public let hyper: FedAdamServer.Hyper
    public var name: String { "fedadam" }
    public var appliesToStart: Bool { true }

    public init(learningRate: Double, hyper: FedAdamServer.Hyper, aggregator: RobustAggregator = .mean) {
        self.hyper = hyper
        super.init(learningRate: learningRate, aggregator: aggregator)
    }

    /// The update: x_k − x over every trainable tensor; kept: x, the model the round started from.
    public func outcome(of trained: TrainedClient, roster: Roster) throws -> LocalOutcome {
        let model = trained.model
        let x = model.parameters.trainable.values
        guard x.count == trained.start.count else { throw PilotError.message("fedadam: the round's start model was not recorded") }
        let layout = NamedTensors.trainableLayout(model)
        let start = try NamedTensors(names: layout.names, shapes: layout.shapes, values: trained.start)
        let delta = try start.with(values: zip(x, trained.start).map { $0 - $1 })
        return LocalOutcome(update: ClientUpdate(client: trained.client, examples: roster.clientSamples[trained.client], tensors: delta),
                            kept: start, reference: try delta.with(values: [Float](repeating: 0, count: x.count)))
    }

    /// The server's step, pure: the n_k-weighted mean of the clients' updates x_k − x is the
    /// pseudo-gradient of one Adam step; every client gets the step u (x ← x + u).
    public override func aggregate(round: Int, updates: [ClientUpdate], serverState: NamedTensors, roster: Roster) throws -> RoundResult {
        var server = FedAdamServer(hyper: hyper)
        if !serverState.isEmpty { try server.restore(serverState) }
        guard let first = updates.first else { throw PilotError.message("fedadam: no update") }
        let rule = aggregator.applicable(to: updates.count)
        let mean = try Aggregate.combine(updates.map(\.tensors.values), weights: updates.map { Double($0.examples) }, with: rule)
        let step = try server.update(delta: mean)
        var result = RoundResult(shared: try first.tensors.with(values: step), serverState: server.state)
        result.notes = fallbackNotes(round: round, rule: rule, updates: updates)
        return result
    }

    /// x ← x + u, tensor by tensor.
    public func apply(round: Int, client: Int, kept: NamedTensors, result: ClientResult, roster: Roster) throws -> NamedTensors {
        guard let u = result.shared else { return kept }
        var next = kept
        for (i, name) in u.names.enumerated() {
            guard let x = next.range(of: name), kept.shape(of: name) == u.shapes[i] else {
                throw PilotError.message("fedadam: client \(client) has no tensor '\(name)' of shape \(u.shapes[i]) to step")
            }
            let step = u.range(of: name)!
            for (j, s) in zip(x, step) { next.values[j] += u.values[s] }
        }
        return next
    }
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
    /// Nothing is exchanged between rounds (the gradients were summed every step).
    public var exchanges: Bool { false }
    public func outcome(of trained: TrainedClient, roster: Roster) throws -> LocalOutcome { try keepEverything(trained) }
}
