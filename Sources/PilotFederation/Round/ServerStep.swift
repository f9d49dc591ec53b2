import PilotCore
import PilotJob
import PilotTensor

/// The server's part of a round, pure: no communicator, no model, no file. Given every update of the
/// round in client order, it
///
///  1. with clients of different LoRA ranks (`model.lora_ranks`), zero-pads every update's LoRA
///     factors to the largest rank (`HetLoRA`), refusing an update of another rank than its client's;
///  2. validates them (`UpdateValidation`: n_k > 0, finite loss and values, the common layout, and
///     `robust.max_update_norm`), refusing the bad ones by name;
///  3. adds client-level DP noise (σ·C, seeded by run seed, round and client) to the accepted ones;
///  4. calls the strategy's pure `aggregate`, and gives each client its leading r_k components of its
///     personal result.
///
/// `RoundExchange` runs it on rank 0 between the gather and the scatter; tests call it directly.
public struct ServerStep {
    public let strategy: FederatedStrategy
    public let roster: Roster
    public let robust: RobustSettings
    public let dp: DPSettings?
    public let seed: UInt64
    /// The fewest updates a round may aggregate (`run.min_clients`, at least 1); with fewer left
    /// after the rejections, the round fails and nothing of it is committed.
    public let minimumUpdates: Int
    /// How a client is named in an error ("client 4 (rank 2)").
    public let describe: (Int) -> String

    public init(strategy: FederatedStrategy, roster: Roster, robust: RobustSettings, dp: DPSettings?, seed: UInt64,
                minimumUpdates: Int = 1, describe: @escaping (Int) -> String = { "client \($0)" }) {
        self.strategy = strategy; self.roster = roster; self.robust = robust; self.dp = dp; self.seed = seed
        self.minimumUpdates = max(1, minimumUpdates); self.describe = describe
    }

    /// The round's result, with the refused updates in `rejected`. Throws, naming every refused
    /// client, when nothing is left to aggregate.
    public func callAsFunction(round: Int, updates: [ClientUpdate], serverState: NamedTensors) throws -> RoundResult {
        let (padded, wrongRank) = try HetLoRA.padded(updates, lora: roster.lora)
        var (accepted, refused) = UpdateValidation.check(padded, settings: robust)
        refused = (refused + wrongRank).sorted { $0.client < $1.client }
        let kept = round > 1 ? "round \(round - 1) stays the latest checkpoint" : "no round is committed"
        guard !accepted.isEmpty else {
            throw PilotError.message("round \(round): every update was rejected, so nothing can be aggregated; \(kept):\n  "
                                     + refused.map { "\(describe($0.client)): \($0.reason)" }.joined(separator: "\n  "))
        }
        guard accepted.count >= minimumUpdates else {
            throw PilotError.message("round \(round): \(accepted.count) update(s) remain, fewer than run.min_clients = \(minimumUpdates), so the round is not aggregated; \(kept). "
                                     + "Rejected here:\(refused.isEmpty ? " none" : "\n  " + refused.map { "\(describe($0.client)): \($0.reason)" }.joined(separator: "\n  "))"
                                     + "\nClients whose training failed are listed above. Fix them, or lower run.min_clients, then resume")
        }
        var noised = accepted
        if let dp {
            for i in noised.indices {
                noised[i].tensors.values = ClientPrivacy.noised(noised[i].tensors.values, std: dp.noiseMultiplier * dp.clip,
                                                                seed: seed, round: round, client: noised[i].client)
            }
        }
        var result = try strategy.aggregate(round: round, updates: noised, serverState: serverState, roster: roster)
        if let lora = roster.lora, !lora.isUniform {
            // HetLoRA: each participant receives its leading r_k components (the shared result, one
            // buffer for every client, is cut by each client: `ClientHost.apply`)
            for (c, p) in result.personal { result.personal[c] = try HetLoRA.resized(p, rank: lora.ranks[c]) }
        }
        result.rejected = refused
        return result
    }
}
