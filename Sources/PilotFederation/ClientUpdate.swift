/// What `configure` hands one client for a round (Flower's `configure_fit`): which client
/// trains, and what it trains (trainable groups, learning rate and stage, in `spec`).
public struct ClientPlan: Sendable {
    public var client: Int
    public var spec: ModelSpec
}

/// What a client sends after local training (Flower's `FitRes`): who it is, n_k, the tensors it
/// shares, and scalar metrics.
public struct ClientUpdate: Sendable {
    public var client: Int
    /// n_k, the client's number of training examples.
    public var examples: Int
    public var tensors: NamedTensors
    public var metrics: [String: Double]

    public init(client: Int, examples: Int, tensors: NamedTensors, metrics: [String: Double] = [:]) {
        self.client = client; self.examples = examples; self.tensors = tensors; self.metrics = metrics
    }
}

/// The result of a strategy's pure `aggregate`: one vector per client, in client order (in the
/// layout of that client's update), and the server state after the round.
public struct Aggregation<ServerState: Sendable>: Sendable {
    public var results: [[Float]]
    public var serverState: ServerState

    public init(results: [[Float]], serverState: ServerState) {
        self.results = results; self.serverState = serverState
    }
}

/// The server state of a method that keeps none between rounds.
public struct NoServerState: Sendable, Equatable {
    public init() {}
}

extension Federation {
    /// The server's view of the gathered buffers: one update per client, in client order, with
    /// the public n_k (the layout stays with the clients).
    func updates(_ vectors: [[Float]]) -> [ClientUpdate] {
        vectors.enumerated().map { k, v in ClientUpdate(client: k, examples: clientSamples[k], tensors: NamedTensors(values: v)) }
    }
}
