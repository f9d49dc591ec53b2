import PilotCore
import PilotModel

/// `local`: every client trains the MLP connector and LoRA on its own data; nothing is sent.
public final class LocalStrategy: FederatedStrategy {
    let learningRate: Double
    public var name: String { "local" }
    public init(learningRate: Double) { self.learningRate = learningRate }

    public func modelSpec(round: Int, client: Int, federation: Federation) -> ModelSpec {
        ModelSpec(variant: .mlp, options: ConnectorOptions(), trainable: .variantDefault, learningRate: learningRate, stage: 0)
    }

    public func prepare(model: MLLM, round: Int, client: Int, state: TensorDict?, federation: Federation) throws {
        if let state { try model.assign(state) }
    }

    public func communicate(round: Int, model: MLLM?, federation: Federation) throws -> TensorDict? {
        try model?.trainableTensors()
    }
}

/// `fedavg` (McMahan et al., 2017): the n_k-weighted mean of connector and LoRA, in client order.
public final class FedAvgStrategy: FederatedStrategy {
    let learningRate: Double
    public var name: String { "fedavg" }
    public init(learningRate: Double) { self.learningRate = learningRate }

    public func modelSpec(round: Int, client: Int, federation: Federation) -> ModelSpec {
        ModelSpec(variant: .mlp, options: ConnectorOptions(), trainable: .variantDefault, learningRate: learningRate, stage: 0)
    }

    public func prepare(model: MLLM, round: Int, client: Int, state: TensorDict?, federation: Federation) throws {
        if let state { try model.assign(state) }
    }

    public func communicate(round: Int, model: MLLM?, federation: Federation) throws -> TensorDict? {
        let mine = try model.map { m in try m.parameters.trainableNames.flatMap { try m.tensor(named: $0).values } }
        let global = try federation.gatherReduceBroadcast(mine) { vectors in
            try Aggregate.weightedMean(vectors, weights: federation.clientSamples.map(Double.init))
        }
        guard let model else { return nil }
        var out = TensorDict()
        var offset = 0
        for name in model.parameters.trainableNames {
            let n = try model.tensor(named: name).count
            out[name] = Array(global[offset..<(offset + n)])
            offset += n
        }
        return out
    }
}
