import Foundation
import PilotCore

/// A Llama-family architecture, decoded from a Hugging Face `config.json` with Hugging Face's own keys.
///
/// Supported: `model_type` "llama" (optional q/k/v/o bias with `attention_bias`) and "qwen2" (q/k/v bias,
/// no o bias), SiLU (SwiGLU) MLPs without bias, default RoPE, full causal attention with grouped-query
/// heads. `load(directory:)` refuses everything else by name (see `validate`), so a model that would
/// silently compute something different never loads.
public struct LlamaConfig: Codable, Equatable, Sendable {
    public var modelType: String
    /// C: width of the residual stream.
    public var hiddenSize: Int
    /// F: width of the MLP.
    public var intermediateSize: Int
    /// L: decoder blocks.
    public var numHiddenLayers: Int
    /// H: query heads.
    public var numAttentionHeads: Int
    /// KV: key/value heads (H when absent); query head h reads KV head h / `numKeyValueGroups`.
    public var numKeyValueHeads: Int
    /// D: width of one head (C / H when absent).
    public var headDim: Int
    public var rmsNormEps: Float
    public var ropeTheta: Double
    /// "default" unless the checkpoint asks for a scaled RoPE (which `validate` refuses).
    public var ropeType: String
    /// V: vocabulary size.
    public var vocabSize: Int
    public var maxPositionEmbeddings: Int
    public var tieWordEmbeddings: Bool
    public var attentionBias: Bool
    public var mlpBias: Bool
    public var hiddenAct: String
    public var useSlidingWindow: Bool
    public var slidingWindow: Int?
    /// Per-layer attention kinds (Qwen2 writes them); only "full_attention" is supported.
    public var layerTypes: [String]?
    public var bosTokenID: Int?
    /// `eos_token_id` may be one id or a list in config.json; kept as a list.
    public var eosTokenIDs: [Int]
    public var padTokenID: Int?

    /// H / KV: query heads that share one key/value head (transformers' `num_key_value_groups`).
    public var numKeyValueGroups: Int { numAttentionHeads / max(1, numKeyValueHeads) }
    /// q/k/v projections carry a bias: Qwen2 always, Llama with `attention_bias`.
    public var hasQKVBias: Bool { modelType == "qwen2" || attentionBias }
    /// o_proj carries a bias: Llama with `attention_bias` only.
    public var hasOBias: Bool { modelType == "llama" && attentionBias }

    public static let supportedModelTypes = ["llama", "qwen2"]

    enum CodingKeys: String, CodingKey {
        case modelType = "model_type", hiddenSize = "hidden_size", intermediateSize = "intermediate_size"
        case numHiddenLayers = "num_hidden_layers", numAttentionHeads = "num_attention_heads"
        case numKeyValueHeads = "num_key_value_heads", headDim = "head_dim", rmsNormEps = "rms_norm_eps"
        case ropeTheta = "rope_theta", ropeScaling = "rope_scaling", ropeParameters = "rope_parameters"
        case vocabSize = "vocab_size", maxPositionEmbeddings = "max_position_embeddings"
        case tieWordEmbeddings = "tie_word_embeddings", attentionBias = "attention_bias", mlpBias = "mlp_bias"
        case hiddenAct = "hidden_act", useSlidingWindow = "use_sliding_window", slidingWindow = "sliding_window"
        case layerTypes = "layer_types"
        case bosTokenID = "bos_token_id", eosTokenID = "eos_token_id", padTokenID = "pad_token_id"
    }

    /// `rope_scaling` (transformers 4) or `rope_parameters` (transformers 5): only the keys we look at.
    struct RopeSpec: Codable, Equatable {
        var rope_type: String?
        var type: String?
        var rope_theta: Double?
    }

    /// One id or a list of ids.
    enum IDs: Codable {
        case one(Int), many([Int])
        init(from decoder: Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let i = try? c.decode(Int.self) { self = .one(i) } else { self = .many(try c.decode([Int].self)) }
        }
        func encode(to encoder: Encoder) throws {
            var c = encoder.singleValueContainer()
            switch self { case .one(let i): try c.encode(i); case .many(let l): try c.encode(l) }
        }
        var list: [Int] { switch self { case .one(let i): [i]; case .many(let l): l } }
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        modelType = try c.decode(String.self, forKey: .modelType)
        hiddenSize = try c.decode(Int.self, forKey: .hiddenSize)
        intermediateSize = try c.decode(Int.self, forKey: .intermediateSize)
        numHiddenLayers = try c.decode(Int.self, forKey: .numHiddenLayers)
        numAttentionHeads = try c.decode(Int.self, forKey: .numAttentionHeads)
        numKeyValueHeads = try c.decodeIfPresent(Int.self, forKey: .numKeyValueHeads) ?? numAttentionHeads
        headDim = try c.decodeIfPresent(Int.self, forKey: .headDim) ?? (numAttentionHeads > 0 ? hiddenSize / numAttentionHeads : 0)
        rmsNormEps = Float(try c.decodeIfPresent(Double.self, forKey: .rmsNormEps) ?? 1e-6)
        let params = try c.decodeIfPresent(RopeSpec.self, forKey: .ropeParameters)
        let scaling = try c.decodeIfPresent(RopeSpec.self, forKey: .ropeScaling)
        ropeTheta = try c.decodeIfPresent(Double.self, forKey: .ropeTheta) ?? params?.rope_theta ?? 10000
        if let t = params?.rope_theta { ropeTheta = t }
        ropeType = scaling.map { $0.rope_type ?? $0.type ?? "unknown" } ?? params?.rope_type ?? "default"
        vocabSize = try c.decode(Int.self, forKey: .vocabSize)
        maxPositionEmbeddings = try c.decodeIfPresent(Int.self, forKey: .maxPositionEmbeddings) ?? 2048
        tieWordEmbeddings = try c.decodeIfPresent(Bool.self, forKey: .tieWordEmbeddings) ?? false
        attentionBias = try c.decodeIfPresent(Bool.self, forKey: .attentionBias) ?? false
        mlpBias = try c.decodeIfPresent(Bool.self, forKey: .mlpBias) ?? false
        hiddenAct = try c.decodeIfPresent(String.self, forKey: .hiddenAct) ?? "silu"
        useSlidingWindow = try c.decodeIfPresent(Bool.self, forKey: .useSlidingWindow) ?? false
        slidingWindow = try c.decodeIfPresent(Int.self, forKey: .slidingWindow)
        layerTypes = try c.decodeIfPresent([String].self, forKey: .layerTypes)
        bosTokenID = try c.decodeIfPresent(Int.self, forKey: .bosTokenID)
        eosTokenIDs = try c.decodeIfPresent(IDs.self, forKey: .eosTokenID)?.list ?? []
        padTokenID = try c.decodeIfPresent(Int.self, forKey: .padTokenID)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(modelType, forKey: .modelType)
        try c.encode(hiddenSize, forKey: .hiddenSize)
        try c.encode(intermediateSize, forKey: .intermediateSize)
        try c.encode(numHiddenLayers, forKey: .numHiddenLayers)
        try c.encode(numAttentionHeads, forKey: .numAttentionHeads)
        try c.encode(numKeyValueHeads, forKey: .numKeyValueHeads)
        try c.encode(headDim, forKey: .headDim)
        try c.encode(Double(rmsNormEps), forKey: .rmsNormEps)
        try c.encode(RopeSpec(rope_type: ropeType, type: nil, rope_theta: ropeTheta), forKey: .ropeParameters)
        try c.encode(vocabSize, forKey: .vocabSize)
        try c.encode(maxPositionEmbeddings, forKey: .maxPositionEmbeddings)
        try c.encode(tieWordEmbeddings, forKey: .tieWordEmbeddings)
        try c.encode(attentionBias, forKey: .attentionBias)
        try c.encode(mlpBias, forKey: .mlpBias)
        try c.encode(hiddenAct, forKey: .hiddenAct)
        try c.encode(useSlidingWindow, forKey: .useSlidingWindow)
        try c.encodeIfPresent(slidingWindow, forKey: .slidingWindow)
        try c.encodeIfPresent(layerTypes, forKey: .layerTypes)
        try c.encodeIfPresent(bosTokenID, forKey: .bosTokenID)
        try c.encode(IDs.many(eosTokenIDs), forKey: .eosTokenID)
        try c.encodeIfPresent(padTokenID, forKey: .padTokenID)
    }

    /// Decodes and validates `config.json` bytes; `file` names the file in errors.
    public static func decode(json: Data, file: String) throws -> LlamaConfig {
        let config: LlamaConfig
        do {
            config = try JSONDecoder().decode(LlamaConfig.self, from: json)
        } catch let e as DecodingError {
            throw PilotError.invalidArgument("\(file): not a Hugging Face Llama config: \(describe(e))")
        }
        try config.validate(file: file)
        return config
    }

    /// Reads `<directory>/config.json`.
    public static func load(directory: String) throws -> LlamaConfig {
        let file = directory + "/config.json"
        guard let data = try readSmallFile(file, limit: smallFileLimit, what: "a config.json") else {
            throw PilotError.notFound(file: file, object: "")
        }
        return try decode(json: data, file: file)
    }

    /// Throws, naming the key and its value, for anything this engine would not compute as transformers does.
    public func validate(file: String) throws {
        func refuse(_ what: String) -> PilotError {
            .invalidArgument("\(file): \(what); this engine supports model_type \(LlamaConfig.supportedModelTypes.joined(separator: " or ")) with silu MLPs without bias, default RoPE and full attention")
        }
        guard LlamaConfig.supportedModelTypes.contains(modelType) else {
            throw refuse("model_type \"\(modelType)\" is not supported")
        }
        guard ropeType == "default" else {
            throw refuse("rope_scaling / rope_parameters.rope_type \"\(ropeType)\" is not supported (only default RoPE)")
        }
        guard hiddenAct == "silu" else { throw refuse("hidden_act \"\(hiddenAct)\" is not supported (only silu)") }
        guard !mlpBias else { throw refuse("mlp_bias true is not supported") }
        if useSlidingWindow { throw refuse("use_sliding_window true is not supported") }
        if modelType == "llama", let w = slidingWindow { throw refuse("sliding_window \(w) is not supported") }
        if let types = layerTypes, let t = types.first(where: { $0 != "full_attention" }) {
            throw refuse("layer_types \"\(t)\" is not supported (only full_attention)")
        }
        for (key, v, cap) in sizes where v <= 0 || v > cap {
            throw PilotError.invalidArgument("\(file): \(key) \(v) is out of range: pilot reads 1…\(cap) (docs/models.md, \"What is checked\"); the config is corrupt or not a model pilot runs")
        }
        guard numKeyValueHeads <= numAttentionHeads, numAttentionHeads % numKeyValueHeads == 0 else {
            throw refuse("num_attention_heads \(numAttentionHeads) is not a multiple of num_key_value_heads \(numKeyValueHeads)")
        }
        guard headDim % 2 == 0 else { throw refuse("head_dim \(headDim) is odd (RoPE rotates pairs)") }
        guard rmsNormEps.isFinite, rmsNormEps > 0, rmsNormEps < 1, ropeTheta.isFinite, ropeTheta > 1 else {
            throw refuse("rms_norm_eps \(rmsNormEps) / rope_theta \(ropeTheta) out of range (rms_norm_eps in (0, 1), rope_theta finite and above 1)")
        }
        for (key, ids) in [("bos_token_id", bosTokenID.map { [$0] } ?? []), ("eos_token_id", eosTokenIDs), ("pad_token_id", padTokenID.map { [$0] } ?? [])] {
            if let bad = ids.first(where: { $0 < 0 || $0 >= vocabSize }) {
                throw PilotError.invalidArgument("\(file): \(key) \(bad) is not a token id of the vocabulary (0..<\(vocabSize), vocab_size); fix the id or vocab_size")
            }
        }
    }

    /// Every size key with its value and the largest value pilot reads. The caps are far above any
    /// released Llama-family model (Llama 3.1 405B: hidden 16384, FFN 53248, 126 layers, 128 heads) and
    /// keep every product of sizes far from overflow, so a hostile config.json cannot size a loop or an
    /// allocation; the tensors present are checked against the sizes before anything is allocated
    /// (`LlamaWeights.check`).
    public var sizes: [(key: String, value: Int, cap: Int)] {
        [("hidden_size", hiddenSize, 1 << 16), ("intermediate_size", intermediateSize, 1 << 18),
         ("num_hidden_layers", numHiddenLayers, 1 << 10), ("num_attention_heads", numAttentionHeads, 1 << 10),
         ("num_key_value_heads", numKeyValueHeads, 1 << 10), ("head_dim", headDim, 1 << 10),
         ("vocab_size", vocabSize, 1 << 24), ("max_position_embeddings", maxPositionEmbeddings, 1 << 24)]
    }

    private static func describe(_ e: DecodingError) -> String {
        switch e {
        case .keyNotFound(let k, _): return "missing key \(k.stringValue)"
        case .typeMismatch(_, let c), .valueNotFound(_, let c), .dataCorrupted(let c):
            let path = c.codingPath.map(\.stringValue).joined(separator: ".")
            return (path.isEmpty ? "" : "key \(path): ") + c.debugDescription
        @unknown default: return "\(e)"
        }
    }
}
