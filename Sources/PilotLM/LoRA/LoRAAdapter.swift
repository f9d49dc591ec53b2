import Foundation
import PilotCore

// Shape letters: as Sources/PilotLM/Llama (C hidden_size, F intermediate_size, H·D query width, KV·D key/value
// width, L layers), plus r the LoRA rank.

/// LoRA weights for the linear layers of a Llama-family LM, in pilot's own naming and layout:
///
///   lm/layers/{l}/attn/{q,k,v,o}/lora_a      [in, r]
///   lm/layers/{l}/attn/{q,k,v,o}/lora_b      [r, out]
///   lm/layers/{l}/mlp/{gate,up,down}/lora_a  [in, r]
///   lm/layers/{l}/mlp/{gate,up,down}/lora_b  [r, out]
///
/// A layer with an adapter computes  y = x·Wᵀ + (alpha/r)·(x·A)·B,  W being the Hugging Face weight
/// [out, in]. This is PEFT's LoRA with A = lora_A.weightᵀ and B = lora_B.weightᵀ (PEFTExport, PEFTAdapter).
/// Every layer 0..<layers carries every target; a value holds its tensors by name, checked at init.
public struct LoRAAdapter: Sendable, Equatable {
    /// A linear layer LoRA can target. Raw values are pilot's names; `huggingFaceName` is transformers'.
    public enum Target: String, CaseIterable, Sendable, Codable {
        case q, k, v, o, gate, up, down

        /// `attn` or `mlp`: the block of pilot's name.
        public var block: String { [.q, .k, .v, .o].contains(self) ? "attn" : "mlp" }
        /// The transformers module name (`q_proj` … `down_proj`), as in PEFT's `target_modules`.
        public var huggingFaceName: String { rawValue + "_proj" }
        /// transformers' parent module of the projection in a decoder layer.
        public var huggingFaceBlock: String { block == "attn" ? "self_attn" : "mlp" }

        public init?(huggingFaceName: String) {
            guard huggingFaceName.hasSuffix("_proj"), let t = Target(rawValue: String(huggingFaceName.dropLast(5))) else { return nil }
            self = t
        }

        /// (in, out) features of this projection in `config`'s model.
        public func features(_ c: LlamaConfig) -> (in: Int, out: Int) {
            let C = c.hiddenSize, F = c.intermediateSize
            let HD = c.numAttentionHeads * c.headDim, KVD = c.numKeyValueHeads * c.headDim
            switch self {
            case .q: return (C, HD)
            case .k, .v: return (C, KVD)
            case .o: return (HD, C)
            case .gate, .up: return (C, F)
            case .down: return (F, C)
            }
        }
    }

    /// One named tensor, row-major.
    public struct Tensor: Sendable, Equatable {
        public let name: String
        public let shape: [Int]
        public var values: [Float]
        public init(name: String, shape: [Int], values: [Float]) { self.name = name; self.shape = shape; self.values = values }
    }

    public let rank: Int
    public let alpha: Float
    /// The targeted projections, in `Target.allCases` order.
    public let targets: [Target]
    /// Number of decoder layers the adapter covers (layers 0..<layers).
    public let layers: Int
    /// Every tensor, sorted by layer, then target in `Target.allCases` order, A before B.
    public private(set) var tensors: [Tensor]
    private var index: [String: Int]

    /// alpha / r, the factor of the LoRA branch.
    public var scale: Float { alpha / Float(rank) }

    /// pilot's names of one projection's two tensors.
    public static func names(layer l: Int, target t: Target) -> (a: String, b: String) {
        let p = "lm/layers/\(l)/\(t.block)/\(t.rawValue)/"
        return (p + "lora_a", p + "lora_b")
    }

    /// Names and shapes an adapter of `rank` on `targets` has for `config`'s model, in storage order.
    public static func shapes(for config: LlamaConfig, rank: Int, targets: [Target]) -> [(name: String, shape: [Int])] {
        var out: [(String, [Int])] = []
        let ordered = Target.allCases.filter(targets.contains)
        for l in 0..<config.numHiddenLayers {
            for t in ordered {
                let (i, o) = t.features(config), n = names(layer: l, target: t)
                out.append((n.a, [i, rank])); out.append((n.b, [rank, o]))
            }
        }
        return out
    }

    /// Builds an adapter from named tensors (any order). Throws, naming the tensor, when one is missing,
    /// unknown, listed twice, or has a shape other than [in, r] / [r, out] with the same in/out for a
    /// target in every layer, or a value count that does not match its shape.
    public init(rank: Int, alpha: Float, targets: [Target], layers: Int, tensors: [Tensor]) throws {
        guard rank > 0 else { throw PilotError.invalidArgument("LoRA adapter: rank must be positive (got \(rank))") }
        guard alpha.isFinite, alpha != 0 else { throw PilotError.invalidArgument("LoRA adapter: lora_alpha must be a nonzero finite number (got \(alpha))") }
        guard layers > 0 else { throw PilotError.invalidArgument("LoRA adapter: it must cover at least one layer (got \(layers))") }
        let ordered = Target.allCases.filter(targets.contains)
        guard !ordered.isEmpty else { throw PilotError.invalidArgument("LoRA adapter: no target modules") }
        var byName: [String: Tensor] = [:]
        for t in tensors {
            guard byName[t.name] == nil else { throw PilotError.invalidArgument("LoRA adapter: tensor '\(t.name)' is given twice") }
            guard t.values.count == t.shape.reduce(1, *) else {
                throw PilotError.invalidArgument("LoRA adapter: tensor '\(t.name)' has \(t.values.count) values for shape \(t.shape)")
            }
            byName[t.name] = t
        }
        var sorted: [Tensor] = [], features: [Target: (Int, Int)] = [:]
        for l in 0..<layers {
            for t in ordered {
                let n = LoRAAdapter.names(layer: l, target: t)
                guard let a = byName.removeValue(forKey: n.a) else { throw PilotError.invalidArgument("LoRA adapter: tensor '\(n.a)' is missing (every layer 0..<\(layers) needs every target)") }
                guard let b = byName.removeValue(forKey: n.b) else { throw PilotError.invalidArgument("LoRA adapter: tensor '\(n.b)' is missing (every layer 0..<\(layers) needs every target)") }
                guard a.shape.count == 2, a.shape[1] == rank, a.shape[0] > 0 else {
                    throw PilotError.invalidArgument("LoRA adapter: tensor '\(n.a)' has shape \(a.shape); expected [in, \(rank)]")
                }
                guard b.shape.count == 2, b.shape[0] == rank, b.shape[1] > 0 else {
                    throw PilotError.invalidArgument("LoRA adapter: tensor '\(n.b)' has shape \(b.shape); expected [\(rank), out]")
                }
                if let (i, o) = features[t], (i, o) != (a.shape[0], b.shape[1]) {
                    throw PilotError.invalidArgument("LoRA adapter: '\(n.a)' / '\(n.b)' are [\(a.shape[0]), r] / [r, \(b.shape[1])] but layer 0 has [\(i), r] / [r, \(o)]")
                }
                features[t] = (a.shape[0], b.shape[1])
                sorted.append(a); sorted.append(b)
            }
        }
        if let extra = byName.keys.sorted().first {
            throw PilotError.invalidArgument("LoRA adapter: tensor '\(extra)' is not one of layers 0..<\(layers) × targets \(ordered.map(\.rawValue).joined(separator: ","))")
        }
        self.rank = rank; self.alpha = alpha; self.targets = ordered; self.layers = layers
        self.tensors = sorted
        var ix: [String: Int] = [:]
        for (i, t) in sorted.enumerated() { ix[t.name] = i }
        index = ix
    }

    /// Builds the adapter of `rank` on `targets` for every layer of `config`'s model, asking `values(name, shape)`
    /// for each tensor in storage order (e.g. a copy out of a trainer's parameter store).
    public init(config: LlamaConfig, rank: Int, alpha: Float, targets: [Target],
                values: (_ name: String, _ shape: [Int]) throws -> [Float]) throws {
        let tensors = try LoRAAdapter.shapes(for: config, rank: rank, targets: targets).map {
            Tensor(name: $0.name, shape: $0.shape, values: try values($0.name, $0.shape))
        }
        try self.init(rank: rank, alpha: alpha, targets: targets, layers: config.numHiddenLayers, tensors: tensors)
    }

    /// The tensor called `name` (pilot's naming), or nil.
    public subscript(name: String) -> Tensor? { index[name].map { tensors[$0] } }

    /// Replaces a tensor's values (same count), e.g. after a training step.
    public mutating func setValues(_ name: String, _ values: [Float]) throws {
        guard let i = index[name] else { throw PilotError.notFound(file: "LoRA adapter", object: name) }
        guard values.count == tensors[i].values.count else {
            throw PilotError.invalidArgument("LoRA adapter: tensor '\(name)' has \(tensors[i].values.count) values, got \(values.count)")
        }
        tensors[i].values = values
    }

    /// Throws, naming the tensor, unless this adapter fits `config`'s model: as many layers as it has (LoRA
    /// goes on every layer, as PEFT does without layers_to_transform) and [in, r] / [r, out] of each
    /// projection as the config sizes it. `what` names the model in errors.
    public func check(against config: LlamaConfig, model what: String) throws {
        guard layers == config.numHiddenLayers else {
            throw PilotError.invalidArgument("LoRA adapter has \(layers) layers but \(what) has \(config.numHiddenLayers) (num_hidden_layers); the adapter was trained for another model")
        }
        for l in 0..<layers {
            for t in targets {
                let (i, o) = t.features(config), n = LoRAAdapter.names(layer: l, target: t)
                let a = self[n.a]!, b = self[n.b]!
                guard a.shape == [i, rank], b.shape == [rank, o] else {
                    throw PilotError.invalidArgument("LoRA tensor '\(n.a)' / '\(n.b)' is \(a.shape) / \(b.shape) but \(what)'s \(t.huggingFaceName) needs [\(i), \(rank)] / [\(rank), \(o)] (in \(i), out \(o)); the adapter was trained for another model")
                }
            }
        }
    }
}
