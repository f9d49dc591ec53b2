import PilotJob
import PilotModel
import PilotTensor

/// What `configure` hands one client for a round (Flower's `configure_fit`): which client
/// trains, and what it trains (trainable groups, learning rate and stage, in `spec`).
public struct ClientPlan: Sendable {
    public var client: Int
    public var spec: ModelSpec
}

/// What a client sends after local training (Flower's `FitRes`): who it is, n_k, the tensors it
/// shares (names and values; the names cross the network with them), and scalar metrics.
public struct ClientUpdate: Sendable, Equatable {
    public var client: Int
    /// n_k, the client's number of training examples.
    public var examples: Int
    public var tensors: NamedTensors
    public var metrics: [String: Double]

    public init(client: Int, examples: Int, tensors: NamedTensors, metrics: [String: Double] = [:]) {
        self.client = client; self.examples = examples; self.tensors = tensors; self.metrics = metrics
    }
}

/// A client's freshly trained model in its rank, and where its trainable values started the round.
public struct TrainedClient {
    public let round: Int
    public let client: Int
    public let model: MLLM
    /// The trainable buffer as the round began (after `prepare`), in the buffer's order.
    public let start: [Float]
}

/// What a client keeps of its round until the server answers, and what it sends.
public struct LocalOutcome {
    /// nil: nothing of this client crosses the network.
    public var update: ClientUpdate?
    /// The client's own tensors that its next state is built from (`FederatedStrategy.apply`).
    public var kept: NamedTensors
    /// The update's values as the round began (same layout), for clipping the change a client makes
    /// (`dp.clip`); nil: looked up by name in the model's starting values.
    public var reference: NamedTensors?

    public init(update: ClientUpdate?, kept: NamedTensors, reference: NamedTensors? = nil) {
        self.update = update; self.kept = kept; self.reference = reference
    }
}

/// What the server sends back in a round: one result that every client receives (a global
/// model, Pilot's T task adapters) and one personal result per participating client (Pilot's
/// ATA-mixed LoRA). Either may be absent.
public struct RoundResult: Sendable, Equatable {
    public var shared: NamedTensors?
    public var personal: [Int: NamedTensors]
    /// The server's state after the round (what a checkpoint keeps to resume bitwise).
    public var serverState: NamedTensors
    /// The updates the server refused this round (the round driver's checks; strategies leave it empty).
    public var rejected: [Rejection] = []
    /// What rank 0 logs about the aggregation, e.g. a group whose robust rule fell back to the
    /// median because too few updates were left (`RobustAggregator.applicable(to:)`).
    public var notes: [String] = []
    /// ATA's choice for each client whose LoRA it mixed (Pilot; empty otherwise): what metrics.h5's
    /// `/ata/…` records. Not sent to the clients.
    public var ata: [Int: ATAChoice] = [:]

    public init(shared: NamedTensors? = nil, personal: [Int: NamedTensors] = [:], serverState: NamedTensors = NamedTensors()) {
        self.shared = shared; self.personal = personal; self.serverState = serverState
    }
}

/// The part of a `RoundResult` one client receives.
public struct ClientResult: Sendable, Equatable {
    public var shared: NamedTensors?
    public var personal: NamedTensors?
    public init(shared: NamedTensors? = nil, personal: NamedTensors? = nil) { self.shared = shared; self.personal = personal }
}
