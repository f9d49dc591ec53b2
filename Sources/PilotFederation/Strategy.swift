import PilotCore
import PilotJob
import PilotModel
import PilotTensor

/// What a client trains in a round.
public struct ModelSpec: Sendable {
    public var variant: ConnectorVariant
    public var options: ConnectorOptions
    public var trainable: TrainableSelection
    public var learningRate: Double
    /// 1 or 2 for Pilot; 0 for single-stage methods.
    public var stage: Int
}

/// A federated method, in the spirit of Flower's Strategy. One round, as the round driver runs it:
///
///  1. `configure`: which clients train and what (the round's sample, `ModelSpec`s).
///  2. On each client's rank: `prepare` the freshly built model from the client's state, train,
///     then `outcome`: the `ClientUpdate` that crosses the network and what the client keeps.
///  3. `RoundExchange` (the one transport) brings every update to the server, which calls the
///     pure `aggregate` on all of them in client order (no communicator, no model), and brings
///     each client its `ClientResult`.
///  4. `apply` builds each client's new state from what it kept and what it got. Clients that
///     did not train this round receive the shared result too (a download, as Flower's next
///     `configure_fit` would send it) and keep their personal tensors.
///  5. Every `eval_every` rounds, `evaluate` scores a client's personalised model.
///
/// Strategies hold settings only. The server's state between rounds (FedAdam's m, v; Pilot's
/// task adapters) is passed into `aggregate` and returned with its result, and the driver keeps
/// and checkpoints it, so every strategy is unit-testable in-process on plain arrays.
public protocol FederatedStrategy: AnyObject {
    var name: String { get }
    /// The clients that train in `round` and what they train (default: the round's sample).
    func configure(round: Int, federation: Federation) -> [ClientPlan]
    /// The model client `client` trains (or is evaluated with) in `round` (1-based).
    func modelSpec(round: Int, client: Int, roster: Roster) -> ModelSpec
    /// Client: set up this round's freshly built model, whose frozen weights are already the
    /// base's, from the client's state (empty before its first round).
    func prepare(model: MLLM, round: Int, client: Int, state: NamedTensors, roster: Roster) throws
    /// Client: after training, the update to send (nil: none) and the tensors to keep.
    func outcome(of trained: TrainedClient, roster: Roster) throws -> LocalOutcome
    /// Server, pure: the round's results from every participating client's update, in client
    /// order, and the server state of the previous round.
    func aggregate(round: Int, updates: [ClientUpdate], serverState: NamedTensors, roster: Roster) throws -> RoundResult
    /// Client: the new state from what it kept (a non-participant: its current state) and its
    /// part of the result (a non-participant: the shared part only).
    func apply(round: Int, client: Int, kept: NamedTensors, result: ClientResult, roster: Roster) throws -> NamedTensors
    /// Scores a client's personalised model on its test examples; the metrics go to metrics.h5.
    func evaluate(_ context: EvaluationContext) throws -> [String: Double]
    /// false: nothing crosses the network (local, centralized), and the exchange is skipped.
    var exchanges: Bool { get }
    /// true: the clients sum their gradients every step (centralized training, data-parallel over
    /// the client ranks) instead of training independently.
    var dataParallel: Bool { get }
    /// true: `apply` needs a non-participant's trainable values even before it first trained
    /// (FedAdam's x ← x + u), so the driver builds them from the base.
    var appliesToStart: Bool { get }
}

extension FederatedStrategy {
    public func configure(round: Int, federation: Federation) -> [ClientPlan] {
        federation.sampling.sample(round: round, clients: federation.clientCount)
            .map { ClientPlan(client: $0, spec: modelSpec(round: round, client: $0, roster: federation.roster)) }
    }
    /// The default: the kept tensors, overwritten by the shared result, then by the personal one.
    public func apply(round: Int, client: Int, kept: NamedTensors, result: ClientResult, roster: Roster) throws -> NamedTensors {
        var state = kept
        if let shared = result.shared { state = try state.merging(shared) }
        if let personal = result.personal { state = try state.merging(personal) }
        return state
    }
    public var exchanges: Bool { true }
    public var dataParallel: Bool { false }
    public var appliesToStart: Bool { false }
}
