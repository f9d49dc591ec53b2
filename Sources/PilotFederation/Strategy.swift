import PilotComm
import PilotCore
import PilotModel

/// What a client trains in a round.
public struct ModelSpec: Sendable {
    public var variant: ConnectorVariant
    public var options: ConnectorOptions
    public var trainable: TrainableSelection
    public var learningRate: Double
    /// 1 or 2 for Pilot; 0 for single-stage methods.
    public var stage: Int
}

/// A client's state between rounds: the values of its trainable (and personalised) tensors by
/// parameter name, after the round's aggregation. This is exactly what a checkpoint stores for
/// the client, and the next round starts from it (plus the frozen base), so an interrupted and
/// resumed run takes the same path as one that never stopped.
public typealias TensorDict = [String: [Float]]

/// A federated method, in the spirit of Flower's Strategy: `configure` says which clients train
/// what in a round; each client's `ClientUpdate` goes through the transport (`communicate`, the
/// only place with collectives); the server's math is each strategy's pure `aggregate` over
/// plain updates (no communicator), which unit tests call directly; `evaluate` scores a client.
///
/// Strategies see only the `Communicator` protocol (through `Federation`), never MPI, so they run
/// unchanged in-process in unit tests and under mpirun. The shared math lives in `Aggregate`.
public protocol FederatedStrategy: AnyObject {
    var name: String { get }
    /// The clients that train in `round` and what they train (every client, today).
    func configure(round: Int, federation: Federation) -> [ClientPlan]
    /// Scores a client's personalised model on its test examples; the metrics go to metrics.h5.
    func evaluate(_ context: EvaluationContext) throws -> [String: Double]
    /// The model client `client` trains in `round` (1-based).
    func modelSpec(round: Int, client: Int, federation: Federation) -> ModelSpec
    /// Client: set up this round's freshly built model, whose frozen weights are already the
    /// base's, from the client's previous state (nil before the first round).
    func prepare(model: MLLM, round: Int, client: Int, state: TensorDict?, federation: Federation) throws
    /// Every rank, after local training: exchange and aggregate. Clients pass their trained
    /// model and get back their new state; the server passes nil and gets nil.
    func communicate(round: Int, model: MLLM?, federation: Federation) throws -> TensorDict?
    /// Server state that a checkpoint must hold to resume bitwise (e.g. FedAdam's m, v).
    func serverState() -> TensorDict
    func restoreServerState(_ state: TensorDict) throws
    /// true: the clients sum their gradients every step (centralized training, data-parallel over
    /// the client ranks) instead of training independently.
    var dataParallel: Bool { get }
}

extension FederatedStrategy {
    public func configure(round: Int, federation: Federation) -> [ClientPlan] {
        (0..<federation.clientCount).map { ClientPlan(client: $0, spec: modelSpec(round: round, client: $0, federation: federation)) }
    }
    public func serverState() -> TensorDict { [:] }
    public func restoreServerState(_ state: TensorDict) throws {}
    public var dataParallel: Bool { false }
}

// MARK: - Helpers shared by strategies

extension MLLM {
    /// Names of the parameters of a group, in their order inside the group's contiguous slice.
    public func names(inGroup group: String) -> [String] {
        parameters.entries.filter { $0.group == group }.sorted { $0.offset < $1.offset }.map(\.name)
    }

    /// The trainable tensors by name (copies).
    public func trainableTensors() throws -> TensorDict {
        var out = TensorDict()
        for name in parameters.trainableNames { out[name] = try tensor(named: name).values }
        return out
    }

    /// Writes the values of every name in `dict` that this model has; returns the names it used.
    @discardableResult
    public func assign(_ dict: TensorDict, only filter: (String) -> Bool = { _ in true }) throws -> [String] {
        var used: [String] = []
        for name in dict.keys.sorted() where filter(name) && parameters.contains(name) {
            let t = try tensor(named: name)
            let v = dict[name]!
            guard v.count == t.count else {
                throw PilotError.invalidArgument("state tensor '\(name)' has \(v.count) values; the model's has \(t.count)")
            }
            v.withUnsafeBufferPointer { t.pointer.update(from: $0.baseAddress!, count: t.count) }
            used.append(name)
        }
        return used
    }
}

extension Federation {
    /// n_k-weighted mean of `vector` over the clients of this client's task, by an allreduce inside
    /// the task communicator (DESIGN §6); every client of the task gets the mean.
    public func taskMean(_ vector: [Float], samples: Int) throws -> [Float] {
        guard let task else { throw PilotError.invalidArgument("taskMean called on the server") }
        var weighted = PilotStrategy.taskWeighted(vector, samples: samples)
        try task.allreduce(&weighted, op: .sum)
        let total = try task.allreduce(scalar: Int64(samples), op: .sum)
        return PilotStrategy.taskMean(sum: weighted, samples: total)
    }

    /// Gives every rank the T task means: each task's leader (task rank 0) sends its task's mean
    /// to the server, which broadcasts all of them in task order. `mean` is ignored on the server
    /// and on non-leaders.
    public func shareTaskMeans(_ mean: [Float]?) throws -> [[Float]] {
        let leader = task?.rank == 0
        let payload = leader ? (mean ?? []) : []
        let parts = try world.gatherv(payload, root: 0)
        var flat: [Float] = []
        var length: Int64 = 0
        if isServer {
            var byTask = [[Float]](repeating: [], count: numTasks)
            for (r, p) in parts.enumerated() where r > 0 && !p.isEmpty { byTask[clientTasks[r - 1]] = p }
            guard let firstLen = byTask.first?.count, byTask.allSatisfy({ $0.count == firstLen }) else {
                throw PilotError.message("task aggregation: some task has no clients (every task needs at least one client)")
            }
            flat = byTask.flatMap { $0 }
            length = Int64(firstLen)
        }
        length = try world.broadcast(scalar: length, root: 0)
        flat = try world.broadcastSized(flat, root: 0)
        return (0..<numTasks).map { Array(flat[(Int(length) * $0)..<(Int(length) * ($0 + 1))]) }
    }

    /// Gathers one vector per client at the server, lets the server turn them into one vector per
    /// client with `mix` (clients' order), and scatters them back (MPI_Scatterv). Clients get
    /// their own result; the server gets nil.
    public func gatherMixScatter(_ vector: [Float]?, mix: ([[Float]]) throws -> [[Float]]) throws -> [Float]? {
        let parts = try world.gatherv(vector ?? [], root: 0)
        var chunks: [[Float]] = []
        if isServer {
            let mixed = try aggregationClock.time { try mix(Array(parts.dropFirst())) }
            guard mixed.count == clientCount else { throw PilotError.message("aggregation produced \(mixed.count) results for \(clientCount) clients") }
            chunks = [[]] + mixed
        }
        let mine = try world.scatterv(chunks, root: 0)
        return isServer ? nil : mine
    }

    /// Gathers one vector per client at the server, reduces them to one global vector, and
    /// broadcasts it to every rank.
    public func gatherReduceBroadcast(_ vector: [Float]?, reduce: ([[Float]]) throws -> [Float]) throws -> [Float] {
        let parts = try world.gatherv(vector ?? [], root: 0)
        var global: [Float] = []
        if isServer { global = try aggregationClock.time { try reduce(Array(parts.dropFirst())) } }
        return try world.broadcastSized(global, root: 0)
    }
}
