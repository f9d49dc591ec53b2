import PilotCore
import PilotTensor
import PilotLM

/// Sizes of the LLaVA-style model (docs/design.md §2). The default is the "tiny" reference.
public struct ModelConfig: Codable, Sendable, Equatable {
    // Vision encoder (ViT)
    /// Square RGB image side in pixels.
    public var imageSize = 32
    /// Square patch side; (imageSize/patchSize)² visual tokens.
    public var patchSize = 8
    public var channels = 3
    /// Vision width Dv.
    public var visionWidth = 128
    public var visionLayers = 2
    public var visionHeads = 4
    public var visionMLPHidden = 512
    // Language model (Llama-style)
    /// Model width d (C in the shape comments).
    public var width = 256
    public var layers = 4
    public var heads = 4
    /// SwiGLU hidden width F.
    public var ffnHidden = 688
    public var vocabSize = 512
    /// Context length T = visual tokens + text tokens.
    public var contextLength = 64
    public var ropeTheta = 10_000.0
    public var normEps: Float = 1e-5
    // LoRA
    public var loraRank = 16
    public var loraAlpha: Float = 32
    /// Standard deviation of LoRA B at init; 0 (the LoRA convention) makes the adapter start as a no-op.
    public var loraBInitStd: Float = 0
    /// Clients of different ranks (HetLoRA): A is drawn as the leading `loraRank` columns of a draw of this
    /// rank, so every client starts from the leading components of one adapter; nil: drawn at `loraRank`.
    public var loraInitRank: Int? = nil
    // Connector
    /// Hidden width of every connector MLP (Dv → hidden → d).
    public var adapterHidden = 256
    // Optional keys (absent from the JSON of the built-in LM, so its config and hashes are unchanged)
    /// Key/value heads of grouped-query attention; nil means `heads` (multi-head attention).
    public var kvHeads: Int? = nil
    /// The imported pretrained LM the model runs on (frozen, shared per rank); nil is the built-in LM.
    public var lm: LMReference? = nil
    /// Linears that get LoRA; nil means all seven (q, k, v, o, gate, up, down).
    public var loraTargets: [String]? = nil
    /// Text tokens before the visual tokens (a chat layout puts the image inside the user turn, after
    /// the system turn and the user tag); nil means 0: visual tokens first, as the built-in LM has it.
    public var visualPosition: Int? = nil
    /// A Hugging Face CLIP vision tower used, frozen, as the vision encoder instead of the built-in ViT
    /// (needs `lm`); nil is the built-in ViT. Its image, patch and hidden sizes set imageSize, patchSize,
    /// channels and visionWidth (`FrozenVisionTower.apply`).
    public var visionTower: VisionTowerReference? = nil

    public init() {}

    /// Every linear of a block that can carry LoRA, in layer order.
    public static let allLoRATargets = LoRAAdapter.Target.allCases.map(\.rawValue)
    /// Hugging Face module names of the LoRA targets (peft's target_modules), from PilotLM's one mapping.
    public static let huggingFaceModuleNames = Dictionary(uniqueKeysWithValues: LoRAAdapter.Target.allCases.map { ($0.rawValue, $0.huggingFaceName) })

    public var kvHeadCount: Int { kvHeads ?? heads }
    /// The LoRA targets in layer order (`loraTargets` as given, or all).
    public var loraTargetNames: [String] {
        guard let t = loraTargets else { return ModelConfig.allLoRATargets }
        return ModelConfig.allLoRATargets.filter { t.contains($0) }
    }

    public static let tiny = ModelConfig()

    public var headDim: Int { width / heads }
    public var visualTokens: Int { (imageSize / patchSize) * (imageSize / patchSize) }
    public var textLength: Int { contextLength - visualTokens }
    /// Text tokens before the visual block (`visualPosition` or 0).
    public var visualOffset: Int { visualPosition ?? 0 }
    /// The sequence position of text token j (text tokens at and after `visualOffset` come after the P visual tokens).
    public func sequencePosition(ofText j: Int) -> Int { j < visualOffset ? j : j + visualTokens }
    public var loraScale: Float { loraAlpha / Float(loraRank) }
    public var patchDim: Int { channels * patchSize * patchSize }

    public func validate() throws {
        func need(_ ok: Bool, _ msg: String) throws { if !ok { throw PilotError.invalidArgument("model config: \(msg)") } }
        try need(width % heads == 0, "width \(width) is not a multiple of heads \(heads)")
        try need(headDim % 2 == 0, "head width \(headDim) must be even for RoPE")
        try need(visionTower != nil || visionWidth % visionHeads == 0, "vision_width \(visionWidth) is not a multiple of vision_heads \(visionHeads)")
        try need(imageSize % patchSize == 0, "image_size \(imageSize) is not a multiple of patch_size \(patchSize)")
        try need(contextLength > visualTokens, "context_length \(contextLength) leaves no room for text after \(visualTokens) visual tokens")
        try need(loraRank > 0, "lora_rank must be positive")
        try need(layers > 0 && vocabSize > 1, "need at least one layer and two tokens")
        try need(visualOffset >= 0 && visualOffset < textLength, "visual_position \(visualOffset) must leave text after the visual tokens (text length \(textLength))")
        try need(visionTower == nil || lm != nil, "vision_tower needs an imported LM (lm): a CLIP tower is the vision encoder of a model over a pretrained LM")
        try need(kvHeadCount >= 1 && heads % kvHeadCount == 0, "heads \(heads) is not a multiple of kv_heads \(kvHeadCount)")
        if let t = loraTargets {
            try need(!t.isEmpty, "lora_targets is empty; give some of \(ModelConfig.allLoRATargets.joined(separator: ", ")) or leave it out for all")
            for name in t where !ModelConfig.allLoRATargets.contains(name) {
                let hf = ModelConfig.huggingFaceModuleNames.first { $0.value == name }?.key
                try need(false, "lora_targets: the LM has no linear '\(name)'\(hf.map { " (write '\($0)' for \(name))" } ?? ""); its linears are \(ModelConfig.allLoRATargets.joined(separator: ", "))")
            }
        }
    }

    enum CodingKeys: String, CodingKey {
        case imageSize = "image_size", patchSize = "patch_size", channels
        case visionWidth = "vision_width", visionLayers = "vision_layers", visionHeads = "vision_heads"
        case visionMLPHidden = "vision_mlp_hidden", width, layers, heads, ffnHidden = "ffn_hidden"
        case vocabSize = "vocab_size", contextLength = "context_length", ropeTheta = "rope_theta"
        case normEps = "norm_eps", loraRank = "lora_rank", loraAlpha = "lora_alpha"
        case loraBInitStd = "lora_b_init_std", adapterHidden = "adapter_hidden"
        case kvHeads = "kv_heads", lm, loraTargets = "lora_targets", visualPosition = "visual_position"
        case visionTower = "vision_tower", loraInitRank = "lora_init_rank"
    }
}

/// An imported pretrained LM that a model runs on: where it is and what its files hash to. The base
/// checkpoint stores this instead of the LM's weights; every rank checks the hash before it trains.
public struct LMReference: Codable, Sendable, Equatable {
    /// The model directory `pilot model import` wrote (as given; resolved against the working directory).
    public var path: String
    /// SHA-256 over the directory's weight and tokenizer files (`PretrainedBase.contentHash`).
    public var sha256: String
    /// The source it was imported from (informative).
    public var source: String?
    /// The dtype the frozen LM's matrices are held in (`[model] base_dtype`); nil is f32, so a model on
    /// an f32 base records exactly what it recorded before dtypes existed.
    public var dtype: BaseDType?
    public init(path: String, sha256: String, source: String? = nil, dtype: BaseDType? = nil) {
        self.path = path; self.sha256 = sha256; self.source = source
        self.dtype = dtype == .f32 ? nil : dtype
    }
    /// The dtype of the frozen matrices (f32 when none is recorded).
    public var baseDType: BaseDType { dtype ?? .f32 }
}

/// The connector between vision encoder and LM (docs/design.md §3).
public enum ConnectorVariant: String, Codable, Sendable, CaseIterable {
    /// (a) one 2-layer GELU MLP (LLaVA's mlp2x_gelu): pretraining and the baselines.
    case mlp
    /// (b) Pilot stage 1: task adapter + client adapter, difference loss.
    case pilotStage1 = "pilot_stage1"
    /// (c) Pilot stage 2: CT-MoA (task adapters, cross-task adapters, router).
    case pilotStage2 = "pilot_stage2"
    /// (d) Dual LoRA: the MLP connector and a shared plus a local LoRA on the LM (FedDPA's model; the
    /// raw value is what files store). How the local one is weighted is the method's (`localLoRAWeight`).
    case dualLoRA = "feddpa"
}

/// Every open point of docs/design.md §3, with the defaults of its table.
public struct ConnectorOptions: Codable, Sendable, Equatable {
    public enum ClientAdapterInStage2: String, Codable, Sendable { case frozen, trainable, dropped }
    public enum CrossTaskInit: String, Codable, Sendable { case copyOfLocal = "copy", random }

    /// Number of tasks T (task adapters and router outputs in stage 2).
    public var numTasks = 3
    /// This client's task id (0-based); its task adapter is the router's first output.
    public var localTask = 0
    /// λ0 of the stage-1 difference loss.
    public var lambdaDiff: Float = 0.1
    public var diffNormalization: DifferenceLoss.Normalization = .rowL2Mean
    /// λ1 of the load-balance loss.
    public var lambdaBalance: Float = 0.1
    /// λ2 of the router z-loss.
    public var lambdaZ: Float = 0.01
    /// nil: dense softmax over all T (the official code); k: top-k with renormalisation.
    public var routerTopK: Int? = nil
    /// The client adapter in stage 2: kept in the sum and frozen (default), kept and trained, or dropped.
    public var clientAdapterInStage2: ClientAdapterInStage2 = .frozen
    public var crossTaskInit: CrossTaskInit = .copyOfLocal
    /// Dual LoRA: weight w of the local LoRA in y = xW + s·(xA_g)B_g + w·s·(xA_l)B_l.
    public var localLoRAWeight: Float = 1

    public init() {}

    public func validate() throws {
        if numTasks < 1 { throw PilotError.invalidArgument("connector: num_tasks must be ≥ 1") }
        if localTask < 0 || localTask >= numTasks {
            throw PilotError.invalidArgument("connector: local_task \(localTask) is outside 0..<\(numTasks)")
        }
        if let k = routerTopK, k < 1 || k > numTasks {
            throw PilotError.invalidArgument("connector: router_top_k \(k) must be in 1...\(numTasks)")
        }
    }

    enum CodingKeys: String, CodingKey {
        case numTasks = "num_tasks", localTask = "local_task", lambdaDiff = "lambda_diff"
        case diffNormalization = "diff_normalization", lambdaBalance = "lambda_balance", lambdaZ = "lambda_z"
        case routerTopK = "router_top_k", clientAdapterInStage2 = "client_adapter_in_stage2"
        case crossTaskInit = "cross_task_init", localLoRAWeight = "feddpa_mix"
    }
}

/// Which parameter groups train.
public enum TrainableSelection: Sendable, Equatable {
    /// The variant's rule: mlp → connector + LoRA; stage 1 → task + client adapter + LoRA;
    /// stage 2 → local task adapter, cross-task adapters, router, LoRA (+ client adapter if so chosen);
    /// FedDPA → connector + both LoRAs.
    case variantDefault
    /// Central pretraining: vision encoder, connector and the whole LM; no LoRA parameters exist.
    case pretrain
    /// Every connector group plus LoRA (the JAX reference benchmark trains this set).
    case connectorAndLoRA
    /// Exactly these groups.
    case groups(Set<String>)
}

extension ModelConfig {
    /// Takes the LM's shapes, RoPE and norm from an imported LM's config: the one place a `LlamaConfig`
    /// maps onto the decoder's settings (the decoder needs head_dim · heads = hidden_size; callers check).
    public mutating func adopt(_ llama: LlamaConfig) {
        width = llama.hiddenSize; layers = llama.numHiddenLayers; heads = llama.numAttentionHeads
        kvHeads = llama.numKeyValueHeads == llama.numAttentionHeads ? nil : llama.numKeyValueHeads
        ffnHidden = llama.intermediateSize; vocabSize = llama.vocabSize
        ropeTheta = llama.ropeTheta; normEps = llama.rmsNormEps
    }
}
