import Foundation
import PilotCore
import PilotData
import PilotHDF5
import PilotModel
import PilotTensor

/// What a base checkpoint records about how it was made (root attributes of the file).
public struct BaseCheckpointMetadata: Codable, Sendable, Equatable {
    /// Scenario of the data directory the pretraining split came from ("vu", "gvqa", or "" if unknown).
    public var scenario: String = ""
    /// Seed of that data directory.
    public var dataSeed: Int64 = 0
    /// Examples in the pretraining split.
    public var examples: Int = 0
    /// How it was trained (steps, batch, learning rate, seed, …).
    public var training: PretrainingParameters = .init()
    /// MPI world size it was trained with (the reduction order depends on it).
    public var worldSize: Int = 1
    /// Mean training loss of the last logging window (CE over answer tokens).
    public var finalLoss: Double = .nan
    /// Optional scores of the base on the scenario's test splits, by task name.
    public var testScores: [String: Double] = [:]
    /// OpenBLAS's kernel it was made with (nil in files from before it was recorded): the bits of a
    /// run from it match another machine's only with the same kernel in both (docs/robustness.md).
    public var blasCore: String? = BLASRuntime.coreName

    public init(scenario: String = "", dataSeed: Int64 = 0, examples: Int = 0, training: PretrainingParameters = .init(),
                worldSize: Int = 1, finalLoss: Double = .nan, testScores: [String: Double] = [:]) {
        self.scenario = scenario; self.dataSeed = dataSeed; self.examples = examples; self.training = training
        self.worldSize = worldSize; self.finalLoss = finalLoss; self.testScores = testScores
    }
}

/// The HDF5 base checkpoint written by `pilot pretrain` and read by every federated client.
///
/// Layout: every parameter of the pretrained `.mlp` model under its stable name (`vision/…`,
/// `connector/mlp/…`, `lm/…`; no `lm/…` for a base on an imported LM, whose `model_config` has an
/// `lm` reference instead), the word-level tokenizer under `/tokenizer/tokens` (built-in LM only), an optional loss curve
/// under `/pretraining/loss`, and root attributes `format = "pilot-base"`, `format_version`,
/// `model_config` (JSON), `connector_variant`, `scenario`, `data_seed`, `steps`, `batch_size`,
/// `learning_rate`, `warmup_steps`, `seed`, `world_size`, `final_loss`, `pretraining` (JSON of
/// all training parameters) and `test_scores` (JSON). Every dataset carries its SHA-256.
public enum BaseCheckpoint {
    public static let format = "pilot-base"
    public static let formatVersion: Int64 = 1
    /// The connector of the base; Pilot's task and client adapters start from it.
    public static let connectorPrefix = ConnectorNames.prefix(ConnectorNames.mlp)

    /// Writes the whole model, the tokenizer and the metadata to `path` (atomic commit).
    ///
    /// A model on an imported LM (`config.lm` set) stores only the vision encoder and the connector;
    /// the LM and its tokenizer stay in the LM directory the config refers to (path and SHA-256), so
    /// `tokenizer` must be nil for it and is required otherwise.
    public static func write(model: MLLM, tokenizer: Tokenizer?, metadata: BaseCheckpointMetadata,
                             lossCurve: [Double]? = nil, to path: String) throws {
        guard model.variant == .mlp else {
            throw PilotError.invalidArgument("a base checkpoint holds an .mlp model (the pretraining variant), not \(model.variant.rawValue)")
        }
        guard (model.config.lm == nil) == (tokenizer != nil) else {
            throw PilotError.invalidArgument(model.config.lm == nil
                ? "a base checkpoint of the built-in LM stores its word-level tokenizer; pass it"
                : "a base checkpoint on an imported LM uses that LM's tokenizer; do not pass a word-level one")
        }
        let f = try H5File.create(path)
        defer { f.close() }
        let enc = JSONEncoder(); enc.outputFormatting = .sortedKeys
        func json<T: Encodable>(_ v: T) throws -> String { String(decoding: try enc.encode(v), as: UTF8.self) }
        try f.setAttribute("format", .string(format))
        try f.setAttribute("format_version", .int(formatVersion))
        try f.setAttribute("model_config", .string(try json(model.config)))
        try f.setAttribute("connector_variant", .string(model.variant.rawValue))
        try f.setAttribute("scenario", .string(metadata.scenario))
        try f.setAttribute("data_seed", .int(metadata.dataSeed))
        try f.setAttribute("pretrain_examples", .int(Int64(metadata.examples)))
        try f.setAttribute("steps", .int(Int64(metadata.training.steps)))
        try f.setAttribute("batch_size", .int(Int64(metadata.training.batchSize)))
        try f.setAttribute("learning_rate", .double(Double("\(metadata.training.learningRate)") ?? Double(metadata.training.learningRate)))
        try f.setAttribute("warmup_steps", .int(Int64(metadata.training.warmupSteps)))
        try f.setAttribute("seed", .int(Int64(bitPattern: metadata.training.seed)))
        try f.setAttribute("world_size", .int(Int64(metadata.worldSize)))
        if let core = metadata.blasCore { try f.setAttribute("blas_core", .string(core)) }
        try f.setAttribute("final_loss", .double(metadata.finalLoss))
        try f.setAttribute("pretraining", .string(try json(metadata.training)))
        try f.setAttribute("test_scores", .string(try json(metadata.testScores)))
        try model.write(into: f, names: model.parameterNames())
        if let tokenizer { try tokenizer.write(to: f, group: "/tokenizer") }
        if let lossCurve, !lossCurve.isEmpty { try f.write(lossCurve, shape: [lossCurve.count], at: "/pretraining/loss") }
        try f.commit()
    }

    /// Reads the model config and metadata without loading weights.
    public static func readMetadata(path: String) throws -> (config: ModelConfig, metadata: BaseCheckpointMetadata) {
        let f = try H5File.open(path)
        defer { f.close() }
        return try readMetadata(f)
    }

    static func readMetadata(_ f: H5File) throws -> (config: ModelConfig, metadata: BaseCheckpointMetadata) {
        guard try f.attribute("format")?.stringValue == format else {
            throw PilotError.message("'\(f.path)' is not a pilot base checkpoint (root attribute format is not \"\(format)\"); create one with `pilot pretrain`")
        }
        let version = try f.attribute("format_version")?.intValue ?? -1
        guard version == formatVersion else {
            throw PilotError.message("'\(f.path)': base checkpoint format_version \(version); this pilot reads version \(formatVersion)")
        }
        let dec = JSONDecoder()
        func decode<T: Decodable>(_ t: T.Type, _ key: String) throws -> T {
            guard let text = try f.attribute(key)?.stringValue else { throw PilotError.notFound(file: f.path, object: "attribute \(key)") }
            do { return try dec.decode(t, from: Data(text.utf8)) } catch {
                throw PilotError.message("'\(f.path)': attribute \(key) is not valid JSON for \(T.self): \(error)")
            }
        }
        let config = try decode(ModelConfig.self, "model_config")
        var m = BaseCheckpointMetadata()
        m.training = try decode(PretrainingParameters.self, "pretraining")
        m.testScores = (try? decode([String: Double].self, "test_scores")) ?? [:]
        m.scenario = try f.attribute("scenario")?.stringValue ?? ""
        m.dataSeed = try f.attribute("data_seed")?.intValue ?? 0
        m.examples = Int(try f.attribute("pretrain_examples")?.intValue ?? 0)
        m.worldSize = Int(try f.attribute("world_size")?.intValue ?? 1)
        m.blasCore = try f.attribute("blas_core")?.stringValue
        m.finalLoss = try f.attribute("final_loss")?.doubleValue ?? .nan
        return (config, m)
    }

    /// Builds a model of any variant from the base checkpoint, plus the text codec to use with it: the
    /// word-level tokenizer stored with a built-in-LM base, or the imported LM's own tokenizer and chat
    /// template (`ChatCodec`) for a base on an imported LM, which must then be given as `base` (loaded
    /// once per rank, `PretrainedBase(reference:context:)`).
    ///
    /// The vision encoder and the LM come from the base. The connector comes from the base's MLP
    /// connector: `.mlp` and `.dualLoRA` load it as is; Pilot stage 1 initialises both the task and the
    /// client adapter from it (docs/design.md §3); stage 2 initialises every task adapter from it and then the
    /// cross-task adapters from the local one (the router keeps its seeded init). LoRA keeps its init
    /// (B = 0, so the model starts out computing exactly the base). Everything else that the model
    /// has and the base lacks is an error.
    public static func load(path: String, variant: ConnectorVariant, options: ConnectorOptions = .init(),
                            trainable: TrainableSelection = .variantDefault, maxBatch: Int, seed: UInt64 = 0,
                            optimizer: AdamW.Parameters = .init(), base: PretrainedBase? = nil,
                            overrides: ModelOverrides = .init(), recomputeActivations: Bool = false) throws -> (MLLM, any ExampleCodec) {
        let f = try H5File.open(path)
        defer { f.close() }
        let (stored, _) = try readMetadata(f)
        let config = overrides.apply(to: stored)
        let codec: any ExampleCodec
        if let lm = config.lm {
            guard let base else {
                throw PilotError.invalidArgument("'\(path)' was pretrained on the LM at '\(lm.path)'; load that LM (PretrainedBase) and pass it to BaseCheckpoint.load")
            }
            guard base.sha256 == lm.sha256 else {
                throw PilotError.invalidArgument("'\(path)' was pretrained on an LM whose files hash to \(lm.sha256.prefix(12))…, but the LM given (\(base.directory)) hashes to \(base.sha256.prefix(12))…; use the LM the base was made with, or pretrain a new base on this one")
            }
            codec = try ChatCodec(base: base)
        } else {
            guard base == nil else {
                throw PilotError.invalidArgument("'\(path)' is a base of the built-in LM; it takes no imported LM")
            }
            codec = WordLevelCodec(try Tokenizer.read(from: f, group: "/tokenizer"))
        }
        let model = try MLLM(config: config, variant: variant, options: options, trainable: trainable,
                             maxBatch: maxBatch, seed: seed, optimizer: optimizer, base: base, recomputeActivations: recomputeActivations)
        let connectorTargets: [String]
        switch variant {
        case .mlp, .dualLoRA: connectorTargets = [connectorPrefix]
        case .pilotStage1: connectorTargets = [ConnectorNames.prefix(ConnectorNames.taskAdapter), ConnectorNames.prefix(ConnectorNames.clientAdapter)]
        case .pilotStage2:
            connectorTargets = (0..<options.numTasks).map { ConnectorNames.prefix(ConnectorNames.taskAdapters($0)) }
                + [ConnectorNames.prefix(ConnectorNames.clientAdapter)]
        }
        for name in model.parameters.names {
            let source: String
            if let target = connectorTargets.first(where: { name.hasPrefix($0) }) {
                source = connectorPrefix + name.dropFirst(target.count)
            } else if name.hasPrefix(ConnectorNames.root) || isLoRA(name) {
                continue  // router, cross-task adapters (set below), LoRA: seeded init
            } else {
                source = name
            }
            guard f.exists(source) else {
                throw PilotError.notFound(file: path, object: "\(source) (needed for \(name)); the base checkpoint does not match this model")
            }
            let t = try model.tensor(named: name)
            let a = try f.read(Float.self, at: source)
            guard a.shape == t.shape else {
                throw PilotError.typeMismatch(file: path, object: source, expected: "float32 \(t.shape) for \(name)", found: "\(a.shape)")
            }
            a.values.withUnsafeBufferPointer { t.pointer.update(from: $0.baseAddress!, count: t.count) }
        }
        if variant == .pilotStage2 { try model.initializeCrossTaskAdapters() }
        return (model, codec)
    }

    /// The imported LM a base checkpoint refers to, loaded and hash-checked (nil for a built-in-LM base).
    public static func loadLM(basePath: String) throws -> PretrainedBase? {
        let (config, _) = try readMetadata(path: basePath)
        return try PretrainedBase.load(for: config, context: "the base checkpoint '\(basePath)'")
    }

    static func isLoRA(_ name: String) -> Bool {
        let leaf = name.split(separator: "/").last.map(String.init) ?? name
        return leaf.hasPrefix("lora_") || leaf.hasPrefix("local_lora_")
    }
}
