import PilotCore
import PilotJob
import PilotModel

/// `model.lora_ranks`: each client's own LoRA rank (HetLoRA; docs/baselines.md, "Heterogeneous LoRA ranks").
extension RunSettings {
    /// Each client's rank and alpha from `model.lora_ranks` (nil without it). Alpha keeps the convention of
    /// `model.lora_rank`: `model.lora_alpha` for every client when given, else 2·r_k (so α_k/r_k = 2).
    public var clientLoRA: ClientLoRA? {
        guard let ranks = model.loraRanks else { return nil }
        return ClientLoRA(ranks: ranks, alphas: ranks.map { model.loraAlpha.map(Float.init) ?? Float(2 * $0) })
    }

    /// The rank every one of `k` clients trains at: `model.lora_ranks`, else `model.lora_rank`, else the
    /// base's (`baseRank`, read only then).
    public func clientRanks(clients k: Int, baseRank: () throws -> Int) rethrows -> [Int] {
        if let ranks = model.loraRanks { return ranks }
        return Array(repeating: try model.loraRank ?? baseRank(), count: k)
    }

    /// Where `clientRanks` comes from, for a message.
    var rankSource: String { model.loraRanks != nil ? "model.lora_ranks" : model.loraRank != nil ? "model.lora_rank" : "the base checkpoint's rank" }

    /// Refuses to resume a run whose clients would train at other LoRA ranks than before: `before` is the
    /// run's (the ranks its round file recorded, `recorded`, or its config's), these settings are the resume's.
    public func checkResumedRanks(before: RunSettings, recorded: [Int], clients k: Int, run: String, baseRank: () throws -> Int) throws {
        let then = recorded.isEmpty ? try before.clientRanks(clients: k, baseRank: baseRank) : recorded
        let now = try clientRanks(clients: k, baseRank: baseRank)
        guard let c = (0..<min(k, then.count, now.count)).first(where: { then[$0] != now[$0] }) else { return }
        let source = recorded.isEmpty ? before.rankSource : "model.lora_ranks, as the checkpoints record"
        throw PilotError.invalidArgument("refusing to resume \(run): client \(c)'s LoRA rank was \(then[c]) (\(source)) and would be \(now[c]) (\(rankSource)); a client keeps its rank for the whole run (its state holds factors of that rank). Resume with the run's config, or start a new run directory")
    }

    /// Refuses a rank list that does not fit the scenario or the method (before MPI starts, with the placement).
    func checkLoRARanks(clients k: Int) throws {
        guard let ranks = model.loraRanks else { return }
        if let r = model.loraRank {
            throw PilotError.invalidArgument("model.lora_rank = \(r) and model.lora_ranks are both set: give every client its rank in model.lora_ranks, or one rank for all in model.lora_rank")
        }
        guard ranks.count == k else {
            throw PilotError.invalidArgument("model.lora_ranks has \(ranks.count) rank(s) but the scenario \(run.data) has \(k) clients: give one rank per client, in client order (client 0 first)")
        }
        let uniform = ranks.allSatisfy { $0 == ranks[0] }
        if !uniform, run.algorithm == .centralized || run.algorithm == .feddpa {
            let why = run.algorithm == .centralized ? "trains one model for all clients (their gradients are summed every step)"
                                                    : "is not supported with mixed ranks (its local and global LoRA share one rank)"
            throw PilotError.invalidArgument("model.lora_ranks gives the clients different ranks (\(Set(ranks).sorted().map(String.init).joined(separator: ", "))), but run.algorithm = \"\(run.algorithm.rawValue)\" \(why): give every client the same rank, or use pilot, fedavg, fedprox, fedadam, shepherd or local")
        }
    }

    /// Refuses a rank larger than the smallest dimension of a LoRA target of the model `config` (the
    /// base's sizes): A [in, r] and B [r, out] would then hold more components than ΔW has rank.
    func checkLoRARankDimensions(_ config: ModelConfig) throws {
        let given: [(key: String, rank: Int)] = model.loraRanks.map { $0.enumerated().map { ("model.lora_ranks (client \($0.offset))", $0.element) } }
            ?? model.loraRank.map { [("model.lora_rank", $0)] } ?? []
        guard let largest = given.max(by: { $0.rank < $1.rank }),
              let target = config.loraTargetShapes.min(by: { min($0.inFeatures, $0.outFeatures) < min($1.inFeatures, $1.outFeatures) }) else { return }
        let limit = min(target.inFeatures, target.outFeatures)
        if largest.rank > limit {
            throw PilotError.invalidArgument("\(largest.key) = \(largest.rank) is larger than the smallest dimension of the LoRA target '\(target.name)' ([\(target.inFeatures), \(target.outFeatures)]) of the base's LM: a rank above \(limit) adds nothing; use a rank of at most \(limit), or leave '\(target.name)' out of model.lora_targets")
        }
    }
}
