import Foundation
import PilotCore
import PilotLM
import PilotTensor

/// An imported pretrained LM as the frozen base of the multimodal model: its config, its weights (one
/// Float32 copy, shared by every model, client and round on the rank), its tokenizer and chat layout.
/// Load it once per rank with `load(reference:)` or `load(directory:)` and hand it to every `MLLM`.
public final class PretrainedBase: @unchecked Sendable {
    public let directory: String
    public let llama: LlamaConfig
    public let weights: LlamaWeights
    public let tokenizer: BPETokenizer
    public let chat: PretrainedLM.ChatLayout
    /// `contentHash` of the directory, computed from its files when it was loaded.
    public let sha256: String
    public let manifest: ModelManifest?
    /// The CLIP vision tower used as the vision encoder, when the model has one (shared like the LM).
    public let visionTower: FrozenVisionTower?

    /// The reference a base checkpoint stores.
    public var reference: LMReference { LMReference(path: directory, sha256: sha256, source: manifest?.source, dtype: weights.dtype) }

    /// Loads `directory` (a `pilot model import` output, or any Hugging Face Llama directory with
    /// F32/F16/BF16 safetensors and tokenizer.json), hashing its files.
    public convenience init(directory: String, dtype: BaseDType = .f32) throws {
        try self.init(directory: directory, expected: nil, dtype: dtype)
    }

    /// Loads the LM at `directory` and the CLIP vision tower at `visionTower` (nil: none), hashing both.
    /// `dtype`: the LM's matrices in f32, bf16 or q8 (the base checkpoint records it).
    public convenience init(directory: String, visionTower: String?, featureLayer: Int = -2, dtype: BaseDType = .f32) throws {
        let tower = try visionTower.map { try FrozenVisionTower(directory: $0, featureLayer: featureLayer) }
        try self.init(directory: directory, expected: nil, tower: tower, dtype: dtype)
    }

    /// The LM (and vision tower) that `config` refers to, loaded and hash-checked; nil for the built-in LM.
    /// `lmPath` and `towerPath` replace the recorded paths (a run's `model.lm` / `model.vision_tower`, for
    /// a cluster where the files live elsewhere); the hashes must still match.
    /// - Parameter context: what refers to them (e.g. "the base checkpoint 'data/vu/base.h5'"), for the errors.
    /// - Parameter sharedWeights: the node's prepared copy of the weights (`prepareShared`) to map
    ///   instead of loading a private copy.
    public static func load(for config: ModelConfig, context: String, lmPath: String? = nil, towerPath: String? = nil,
                            sharedWeights: String? = nil, verifiedHash: String? = nil) throws -> PretrainedBase? {
        guard var lm = config.lm else {
            if config.visionTower != nil || towerPath != nil {
                throw PilotError.invalidArgument("\(context) has a vision tower but no imported LM; a CLIP tower needs a base pretrained with --lm")
            }
            return nil
        }
        if let lmPath { lm.path = lmPath }
        var tower: FrozenVisionTower?
        if var t = config.visionTower {
            if let towerPath { t.path = towerPath }
            tower = try FrozenVisionTower(directory: t.path, featureLayer: t.featureLayer, expected: (t.sha256, context))
        } else if towerPath != nil {
            throw PilotError.invalidArgument("model.vision_tower is set but \(context) was pretrained with the built-in ViT; remove model.vision_tower, or pretrain a base with `pilot pretrain --vision-tower DIR`")
        }
        return try PretrainedBase(directory: lm.path, expected: (lm.sha256, context), tower: tower, sharedWeights: sharedWeights,
                                  verifiedHash: verifiedHash, dtype: lm.baseDType)
    }

    /// Where a node keeps its prepared copy of the LM `config` refers to: `cacheDirectory`, or
    /// `<LM directory>/.pilot-cache`. nil for the built-in LM.
    public static func sharedWeightsPath(for config: ModelConfig, lmPath: String? = nil, cacheDirectory: String? = nil) -> String? {
        guard let lm = config.lm else { return nil }
        let dir = cacheDirectory ?? ((lmPath ?? lm.path) + "/.pilot-cache")
        return PreparedWeights.path(cacheDirectory: dir, sourceSHA256: lm.sha256, dtype: lm.baseDType)
    }

    /// The content hash of the LM `config` refers to (at `lmPath` when given), which must be the one
    /// recorded: every rank checks its own view of the files, so ranks that disagree are named.
    public static func verifyLM(for config: ModelConfig, context: String, lmPath: String? = nil) throws -> String {
        guard var lm = config.lm else { throw PilotError.message("\(context) has no imported LM") }
        if let lmPath { lm.path = lmPath }
        return try lmHash(directory: lm.path, expected: (lm.sha256, context))
    }

    /// One rank per node, before the others map it: writes the node's prepared copy of the LM at `path`
    /// (or checks the one there, rebuilding it when it is stale or damaged). `hash` is the LM's content
    /// hash, already checked against the recorded one (`verifyLM`). Returns what it did ("reused",
    /// "built", "rebuilt (why)").
    public static func prepareShared(for config: ModelConfig, lmPath: String? = nil, hash: String, path: String,
                                     progress: (String) -> Void = { _ in }) throws -> String {
        guard let lm = config.lm else { throw PilotError.message("no imported LM to share") }
        // every file read and checked against the others before anything is written
        let checked = try ModelDirectory(directory: lmPath ?? lm.path)
        try checked.check(dtype: lm.baseDType, key: "model.base_dtype")
        // the node's one copy must fit before it is written and mapped (not an OOM kill in round 1)
        let bytes = LlamaWeights.layout(checked.config, dtype: lm.baseDType).total
        try MemoryInfo.require(bytes, for: "the shared copy of the LM \(lmPath ?? lm.path) in \(lm.baseDType.rawValue)",
                               fix: "use a smaller base dtype (model.base_dtype = \"bf16\" halves it, \"q8\" quarters it), fewer ranks on the node, or a node with more memory")
        return try PreparedWeights.prepare(path: path, config: checked.config, source: checked.checkpoint,
                                           sourceSHA256: hash, dtype: lm.baseDType, progress: progress)
    }

    /// Loads the LM a checkpoint refers to and checks that its files still hash to the recorded value.
    /// - Parameter context: what refers to it (e.g. the base checkpoint's path), for the error.
    public convenience init(reference: LMReference, context: String) throws {
        try self.init(directory: reference.path, expected: (reference.sha256, context))
    }

    /// The files are hashed once; with `expected`, a different hash is refused before any weight is read.
    /// - Parameter verifiedHash: the directory's hash when this rank has just checked it (`verifyLM`).
    init(directory: String, expected: (sha256: String, context: String)?, tower: FrozenVisionTower? = nil, sharedWeights: String? = nil,
         verifiedHash: String? = nil, dtype: BaseDType = .f32) throws {
        let hash = try verifiedHash ?? PretrainedBase.lmHash(directory: directory, expected: expected)
        self.directory = directory
        sha256 = hash
        visionTower = tower
        // Every file of the directory read and checked against the others before any weight is allocated.
        let checked = try ModelDirectory(directory: directory)
        manifest = checked.manifest
        llama = checked.config
        guard llama.modelType == "llama", !llama.hasQKVBias, !llama.hasOBias, !llama.mlpBias else {
            throw PilotError.invalidArgument("\(directory)/config.json: model_type \(llama.modelType) with biases; the multimodal model runs on bias-free Llama-family LMs (SmolLM2, Llama) for now")
        }
        guard llama.hiddenSize == llama.numAttentionHeads * llama.headDim else {
            throw PilotError.invalidArgument("\(directory)/config.json: head_dim \(llama.headDim) × \(llama.numAttentionHeads) heads ≠ hidden_size \(llama.hiddenSize); not supported by the training engine")
        }
        tokenizer = checked.tokenizer
        chat = checked.chat
        try checked.check(dtype: dtype, key: "model.base_dtype")
        if let sharedWeights {
            weights = try PreparedWeights.map(path: sharedWeights, config: llama, sourceSHA256: hash, dtype: dtype)
        } else {
            try MemoryInfo.require(LlamaWeights.layout(llama, dtype: dtype).total, for: "a copy of the LM \(directory) in \(dtype.rawValue)",
                                   fix: "use a smaller base dtype (bf16 halves it, q8 quarters it), share one copy per node (model.share_base), or a node with more memory")
            weights = try LlamaWeights(config: llama, source: checked.checkpoint, dtype: dtype)
        }
    }

    /// `contentHash` of a directory that a checkpoint refers to (the LM, a vision tower), with the errors
    /// a user can act on: the directory is missing (`missing` says what to do; `absent` is the whole message
    /// when nothing refers to it yet), unreadable, or, with `expected`, hashes to something else (`changed`).
    /// The LM directory's content hash, checked against `expected`, with the errors a user can act on.
    static func lmHash(directory: String, expected: (sha256: String, context: String)?) throws -> String {
        try referencedHash(
            directory: directory, what: "the LM", expected: expected,
            missing: "import the same model there (`pilot model import`, or scripts/get_smollm2.sh) or give a path every node can read",
            absent: "LM directory '\(directory)' does not exist on this machine; import the model there first (`pilot model import FILE.gguf --out \(directory)`, or scripts/get_smollm2.sh) or give a path every node can read",
            changed: "the model directory changed. Re-import the original model, or pretrain a new base on this one (`pilot pretrain --lm \(directory)`)")
    }

    static func referencedHash(directory: String, what: String, expected: (sha256: String, context: String)?,
                               missing: String, absent: String, changed: String) throws -> String {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDir), isDir.boolValue else {
            if let expected {
                throw PilotError.invalidArgument("\(expected.context) refers to \(what) at '\(directory)', which does not exist on this machine; \(missing)")
            }
            throw PilotError.invalidArgument(absent)
        }
        let hash: String
        do { hash = try contentHash(directory: directory) } catch {
            throw PilotError.invalidArgument("\(expected?.context ?? what) at '\(directory)' cannot be read on this machine (\(error))")
        }
        if let expected, hash != expected.sha256 {
            throw PilotError.invalidArgument("\(expected.context) was made with \(what) at '\(directory)' whose files hashed to \(expected.sha256.prefix(12))…; they now hash to \(hash.prefix(12))…: \(changed)")
        }
        return hash
    }

    /// SHA-256 over the sorted lines "NAME SHA256(FILE)\n" of every regular file in the directory except
    /// pilot-model.json (which records provenance, not content). Reads every file once, and a big file again
    /// only when it changed since its digest was remembered in `<directory>/.pilot-cache` (`DigestCache`).
    public static func contentHash(directory: String) throws -> String {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: directory, isDirectory: &isDir), isDir.boolValue else {
            throw PilotError.notFound(file: directory, object: "model directory")
        }
        let names = try fm.contentsOfDirectory(atPath: directory).filter { name in
            var d: ObjCBool = false
            return name != ModelManifest.fileName && !name.hasPrefix(".")
                && fm.fileExists(atPath: directory + "/" + name, isDirectory: &d) && !d.boolValue
        }.sorted()
        var sha = SHA256()
        for n in names {
            let path = directory + "/" + n
            let digest = try DigestCache.digest(of: path, cacheDirectory: directory + "/.pilot-cache") { try PilotLM.sha256(file: path) }
            sha.update(Array("\(n) \(digest)\n".utf8))
        }
        return SHA256.hex(sha.finalize())
    }

    /// The LM part of a `ModelConfig` for this base: widths, heads, vocabulary, RoPE and norm from
    /// config.json; context length, LoRA and vision settings are kept from `template`.
    public func modelConfig(_ template: ModelConfig) -> ModelConfig {
        var c = template
        c.adopt(llama)
        c.lm = reference
        return visionTower?.apply(to: c) ?? c
    }

    /// Whether `config`'s LM shapes are this base's (a checkpoint made on another LM is refused).
    public func check(_ config: ModelConfig, context: String) throws {
        let want = modelConfig(config)
        guard want.width == config.width, want.layers == config.layers, want.heads == config.heads,
              want.kvHeadCount == config.kvHeadCount, want.ffnHidden == config.ffnHidden, want.vocabSize == config.vocabSize else {
            throw PilotError.invalidArgument("\(context): its model config (width \(config.width), \(config.layers) layers, vocab \(config.vocabSize)) does not match the LM at \(directory) (width \(want.width), \(want.layers) layers, vocab \(want.vocabSize))")
        }
        switch (config.visionTower, visionTower) {
        case (nil, nil): break
        case (nil, let t?):
            throw PilotError.invalidArgument("\(context): the model uses the built-in ViT, but the base given carries the vision tower at \(t.directory); load the base without it")
        case (let r?, nil):
            throw PilotError.invalidArgument("\(context): the model uses the vision tower at \(r.path), but it was not loaded; load the base with PretrainedBase.load(for:context:)")
        case let (r?, t?):
            guard r.sha256 == t.sha256, r.featureLayer == t.featureLayer, config.imageSize == t.config.imageSize,
                  config.patchSize == t.config.patchSize, config.visionWidth == t.config.hiddenSize else {
                throw PilotError.invalidArgument("\(context): its vision tower (sha256 \(r.sha256.prefix(12))…, feature layer \(r.featureLayer), \(config.imageSize)px, width \(config.visionWidth)) is not the one loaded from \(t.directory) (sha256 \(t.sha256.prefix(12))…, feature layer \(t.featureLayer), \(t.config.imageSize)px, width \(t.config.hiddenSize))")
            }
        }
    }
}
