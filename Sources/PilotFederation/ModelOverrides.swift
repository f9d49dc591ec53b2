import PilotModel
import PilotTensor

/// What a run's config may change on the base checkpoint's model (`[model]` keys): the LoRA adapters
/// on the LM, which the base does not contain (they start at B = 0 every run). Everything else comes
/// from the base. Nothing given keeps the base's config exactly.
public struct ModelOverrides: Sendable, Equatable {
    public var loraRank: Int?
    public var loraAlpha: Float?
    public var loraTargets: [String]?
    /// The dtype of the frozen LM's matrices (`model.base_dtype`); nil keeps the base's.
    public var baseDType: BaseDType?
    /// Each client's own rank (`model.lora_ranks`, HetLoRA), indexed by client; `client(_:)` picks one.
    /// `apply(to:)` ignores it: a model is built for one client.
    public var loraRanks: [Int]?
    /// The rank whose initial A this model's A is cut from (`ModelConfig.loraInitRank`); nil: its own.
    public var loraInitRank: Int?

    public init(loraRank: Int? = nil, loraAlpha: Float? = nil, loraTargets: [String]? = nil, baseDType: BaseDType? = nil) {
        self.loraRank = loraRank; self.loraAlpha = loraAlpha; self.loraTargets = loraTargets; self.baseDType = baseDType
    }

    /// Client k's settings: its own rank from `loraRanks` (alpha: `loraAlpha`, or 2·r_k as for `loraRank`),
    /// and, when the ranks differ, A's initial values cut from a draw at the largest rank (HetLoRA's
    /// global adapter), so that every client starts from the leading components of one adapter.
    public func client(_ k: Int) -> ModelOverrides {
        guard let ranks = loraRanks else { return self }
        var o = self
        o.loraRank = ranks[k]
        o.loraRanks = nil
        if let largest = ranks.max(), largest > ranks[k] { o.loraInitRank = largest }
        return o
    }

    /// The base's config with these settings: a rank without an alpha gets alpha = 2·r (the base's
    /// 16/32 ratio, so the LoRA scale stays 2); targets are kept in layer order.
    public func apply(to base: ModelConfig) -> ModelConfig {
        var c = base
        if let r = loraRank {
            c.loraRank = r
            c.loraAlpha = loraAlpha ?? Float(2 * r)
        } else if let a = loraAlpha {
            c.loraAlpha = a
        }
        if let r = loraInitRank { c.loraInitRank = r }
        if let t = loraTargets {
            let ordered = ModelConfig.allLoRATargets.filter { t.contains($0) }
            c.loraTargets = ordered == ModelConfig.allLoRATargets ? nil : ordered
        }
        if let d = baseDType, c.lm != nil { c.lm!.dtype = d == .f32 ? nil : d }
        return c
    }
}
