import PilotCore
import PilotJob
import PilotTensor

/// A strategy whose averaging step can run on securely summed updates (`secure.aggregation`): the
/// server receives, per group, only the share-weighted fixed-point sum Σ_k (w_k / W)·x_k of the
/// summed tensors, and each client's other tensors in the clear.
public protocol SecureAveraging: FederatedStrategy {
    /// The clients whose updates are summed together: 0 for every averaging method, the client's
    /// task for Pilot's Eq. 10.
    func secureGroup(client: Int, roster: Roster) -> Int
    /// Whether an update's tensor is summed (masked); the others cross in the clear (Pilot's LoRA).
    func isSummed(_ name: String) -> Bool
    /// Client k's weight w_k in its group's mean.
    func secureWeight(_ update: ClientUpdate) -> Double
    /// Server, pure: the round's result from each group's mean (the summed tensors, decoded) and
    /// the participants' clear tensors (empty tensors for methods that mask everything).
    func aggregate(round: Int, means: [Int: NamedTensors], clear: [ClientUpdate], serverState: NamedTensors,
                   roster: Roster) throws -> RoundResult
}

extension AveragingStrategy {
    public func secureGroup(client: Int, roster: Roster) -> Int { 0 }
    public func isSummed(_ name: String) -> Bool { true }
    public func secureWeight(_ update: ClientUpdate) -> Double { weight(update) }

    /// The mean every client receives, as `aggregate` (robust.aggregator = "mean") gives it in floats.
    public func aggregate(round: Int, means: [Int: NamedTensors], clear: [ClientUpdate], serverState: NamedTensors,
                          roster: Roster) throws -> RoundResult {
        guard let mean = means[0] else { throw PilotError.message("\(type(of: self)): no secure sum to average") }
        return RoundResult(shared: mean)
    }
}

extension FedAvgStrategy: SecureAveraging {}
extension FedProxStrategy: SecureAveraging {}
extension ShepherdStrategy: SecureAveraging {}
extension FedDPAStrategy: SecureAveraging {}

extension FedAdamStrategy: SecureAveraging {
    public func secureGroup(client: Int, roster: Roster) -> Int { 0 }
    public func isSummed(_ name: String) -> Bool { true }
    public func secureWeight(_ update: ClientUpdate) -> Double { Double(update.examples) }

    /// The pseudo-gradient is the securely summed mean of x_k − x; the server's Adam step follows as in `aggregate`.
    public func aggregate(round: Int, means: [Int: NamedTensors], clear: [ClientUpdate], serverState: NamedTensors,
                          roster: Roster) throws -> RoundResult {
        guard let mean = means[0] else { throw PilotError.message("fedadam: no secure sum") }
        var server = FedAdamServer(hyper: hyper)
        if !serverState.isEmpty { try server.restore(serverState) }
        let step = try server.update(delta: mean.values)
        return RoundResult(shared: try mean.with(values: step), serverState: server.state)
    }
}
