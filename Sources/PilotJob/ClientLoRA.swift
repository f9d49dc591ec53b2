/// Each client's LoRA rank r_k and alpha α_k: one rank for all (`model.lora_rank`, or the base's), or
/// each client its own (`model.lora_ranks`, HetLoRA; docs/baselines.md, "Heterogeneous LoRA ranks").
/// Client k's adapter adds ΔW_k = (α_k/r_k)·A_k·B_k to each target's weight (A_k [in, r_k], B_k [r_k, out]).
public struct ClientLoRA: Sendable, Equatable {
    /// r_k, indexed by client.
    public var ranks: [Int]
    /// α_k, indexed by client.
    public var alphas: [Float]

    public init(ranks: [Int], alphas: [Float]) {
        precondition(ranks.count == alphas.count, "ClientLoRA: \(ranks.count) ranks but \(alphas.count) alphas")
        self.ranks = ranks; self.alphas = alphas
    }

    /// The largest rank: the server pads every client's factors to it.
    public var maxRank: Int { ranks.max() ?? 0 }
    /// Every client has the same rank: nothing is padded, and ATA compares the factors as without ranks.
    public var isUniform: Bool { ranks.allSatisfy { $0 == ranks.first } }
    /// The scale α_k/r_k of client k's ΔW, as the model computes it (in Float), widened to Double.
    public func scale(_ client: Int) -> Double { Double(alphas[client] / Float(ranks[client])) }
}
