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
    /// Client weights of the mean: n_k by default.
    func weights(_ federation: Federation) -> [Double] { federation.clientSamples.map(Double.init) }

    public func communicate(round: Int, model: MLLM?, federation: Federation) throws -> TensorDict? {
        let names = model.map(sharedNames) ?? []
        let mine = try model.map { try $0.flatValues(names) }
        let global = try federation.gatherReduceBroadcast(mine) { vectors in
            try Aggregate.weightedMean(vectors, weights: self.weights(federation))
        }
        guard let model else { return nil }
        var state = try model.trainableTensors()
        state.merge(try model.unflatten(global, names: names)) { _, new in new }
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
    override func weights(_ federation: Federation) -> [Double] { Array(repeating: 1, count: federation.clientCount) }
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
            let mean = try Aggregate.weightedMean(deltas, weights: federation.clientSamples.map(Double.init))
            return try self.server.update(delta: mean)
        }
        guard let model else { return nil }
        guard step.count == roundStart.count else { throw PilotError.message("fedadam: the server's step has \(step.count) values, the model \(roundStart.count)") }
        let next = zip(roundStart, step).map { $0 + $1 }
        return try model.unflatten(next, names: model.parameters.trainableNames)
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

    public func communicate(round: Int, model: MLLM?, federation: Federation) throws -> TensorDict? {
        try model?.trainableTensors()
    }
}

extension MLLM {
    /// The values of `names`, concatenated in that order.
    public func flatValues(_ names: [String]) throws -> [Float] {
        var out: [Float] = []
        for name in names { out += try tensor(named: name).values }
        return out
    }

    /// The inverse of `flatValues`: splits `flat` into the named tensors.
    public func unflatten(_ flat: [Float], names: [String]) throws -> TensorDict {
        var out = TensorDict()
        var offset = 0
        for name in names {
            let n = try tensor(named: name).count
            guard offset + n <= flat.count else { throw PilotError.invalidArgument("vector of \(flat.count) values is too short for \(names.count) tensors") }
            out[name] = Array(flat[offset..<(offset + n)])
            offset += n
        }
        guard offset == flat.count else { throw PilotError.invalidArgument("vector of \(flat.count) values does not match the tensors (\(offset))") }
        return out
    }
}
