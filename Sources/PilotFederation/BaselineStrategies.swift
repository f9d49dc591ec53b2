import PilotCore
import PilotModel

/// The single-stage baselines: every client trains the MLP connector and LoRA from the base, and
/// the next round starts from the client's state. Subclasses define what crosses the network.
public class SingleStageStrategy {
    let learningRate: Double
    public init(learningRate: Double) { self.learningRate = learningRate }

    public func modelSpec(round: Int, client: Int, federation: Federation) -> ModelSpec {
        ModelSpec(variant: .mlp, options: ConnectorOptions(), trainable: .variantDefault, learningRate: learningRate, stage: 0)
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

/// `fedavg` (McMahan et al., 2017): the n_k-weighted mean of connector and LoRA, in client order.
public final class FedAvgStrategy: SingleStageStrategy, FederatedStrategy {
    public var name: String { "fedavg" }

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
