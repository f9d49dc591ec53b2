import PilotCore
import PilotJob

/// The server's part of a round, pure: no communicator, no model, no file. Given every update of the
/// round in client order, it
///
///  1. validates them (`UpdateValidation`: n_k > 0, finite loss and values, the common layout, and
///     `robust.max_update_norm`), refusing the bad ones by name;
///  2. adds client-level DP noise (σ·C, seeded by run seed, round and client) to the accepted ones;
///  3. calls the strategy's pure `aggregate`.
///
/// `RoundExchange` runs it on rank 0 between the gather and the scatter; tests call it directly.
public struct ServerStep {
    public let strategy: FederatedStrategy
    public let roster: Roster
    public let robust: RobustSettings
    public let dp: DPSettings?
    public let seed: UInt64
    /// How a client is named in an error ("client 4 (rank 2)").
    public let describe: (Int) -> String

    public init(strategy: FederatedStrategy, roster: Roster, robust: RobustSettings, dp: DPSettings?, seed: UInt64,
                describe: @escaping (Int) -> String = { "client \($0)" }) {
        self.strategy = strategy; self.roster = roster; self.robust = robust; self.dp = dp; self.seed = seed; self.describe = describe
    }

    /// The round's result, with the refused updates in `rejected`. Throws, naming every refused
    /// client, when nothing is left to aggregate.
    public func callAsFunction(round: Int, updates: [ClientUpdate], serverState: TensorDict) throws -> RoundResult {
        let (accepted, refused) = UpdateValidation.check(updates, settings: robust)
        guard !accepted.isEmpty else {
            throw PilotError.message("round \(round): every update was rejected, so nothing can be aggregated; \(round > 1 ? "round \(round - 1) stays the latest checkpoint" : "no round is committed"):\n  "
                                     + refused.map { "\(describe($0.client)): \($0.reason)" }.joined(separator: "\n  "))
        }
        var noised = accepted
        if let dp {
            for i in noised.indices {
                noised[i].tensors.values = ClientPrivacy.noised(noised[i].tensors.values, std: dp.noiseMultiplier * dp.clip,
                                                                seed: seed, round: round, client: noised[i].client)
            }
        }
        var result = try strategy.aggregate(round: round, updates: noised, serverState: serverState, roster: roster)
        result.rejected = refused
        return result
    }
}
