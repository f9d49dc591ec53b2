import PilotComm
import PilotCore
import PilotData
import PilotHDF5
import PilotJob
import PilotModel

/// What a rank reads once, before its first round: the frozen LM (client ranks of a run on an
/// imported LM), the tokenizer, and its own clients' shards and test splits (only its own). The
/// server reads no shard.
struct ClientInputs {
    /// This rank's clients' prepared training data, by client (empty on the server).
    var train: [Int: PreparedExamples] = [:]
    /// The test examples of every task this rank's clients have, by task, prepared once (rows
    /// `eval.first_example ..<` of the task's test split).
    var test: [FedTask: PreparedExamples] = [:]
    /// Each client's task, for every client of the scenario.
    var clientTasks: [FedTask] = []
    /// How this rank's examples become text (nil on the server of a run on an imported LM, which never tokenizes).
    var codec: (any ExampleCodec)?
    /// The imported frozen LM, loaded once per rank and shared by every model this rank builds (nil for
    /// the built-in LM, and on the server, which only aggregates adapters).
    var lm: PretrainedBase?
    /// SHA-256 of each of this rank's clients' shards: a resume refuses changed inputs.
    var shardHashes: [Int: String] = [:]
    /// Whether the CLIP tower's features come from the caches (on every rank alike).
    var visionFeaturesCached = false
    /// How this rank came by each vision-feature cache it reads ("client 3: built"), for the run's report.
    var visionCaches: [String] = []

    /// Collective over `world`: every client rank checks the imported LM's files against the base's
    /// record (so ranks that see another LM are named together), then one client rank per node writes
    /// (or checks) the node's prepared copy at `base.sharedWeights`, which every client rank then maps
    /// (`load`). The server prepares nothing and holds no LM. Returns what each preparing rank did, for
    /// the log, and this rank's checked hash of the LM (nil on the server).
    static func prepareSharedBase(_ base: BaseFiles, world: any Communicator, isClient: Bool,
                                  label: @escaping (Int) -> String) throws -> (log: [String], hash: String?) {
        guard let path = base.sharedWeights else { return ([], nil) }
        let context = "the base checkpoint '\(base.path)'"
        // the lowest client rank of each node prepares: split the client ranks by node
        let node = try world.split(color: isClient ? 0 : nil, key: world.rank, name: "clients").map { try $0.splitByNode() }
        let hash = try RankCheck.run("checking the LM", on: world, label: label) { () -> String? in
            isClient ? try PretrainedBase.verifyLM(for: base.stored, context: context, lmPath: base.lmPath) : nil
        }
        let done = try RankCheck.run("preparing the node's shared copy of the LM in \(path)", on: world, label: label) { () -> String in
            guard let node, node.rank == 0, let hash else { return "" }
            let did = try PretrainedBase.prepareShared(for: base.config, lmPath: base.lmPath, hash: hash, path: path)
            return "\(label(world.rank)) on \(Self.hostName(world)): \(did) \(path)"
        }
        let all = try world.gatherv(Array(done.utf8), root: 0)
        return (all.map { String(decoding: $0, as: UTF8.self) }.filter { !$0.isEmpty }, hash)
    }

    static func hostName(_ world: any Communicator) -> String {
        type(of: world).hostName
    }

    /// Collective over `world`: a failure on any rank is reported once by rank 0, naming the rank and the
    /// client. With a CLIP tower, the tower's features are then cached (`cacheVisionFeatures`).
    /// - Parameter verifiedHash: the LM's hash as this rank checked it (`prepareSharedBase`), not hashed again.
    static func load(scenario: ScenarioDirectory, base: BaseFiles, placement: Placement, settings: RoundSettings,
                     world: any Communicator, verifiedHash: String? = nil) throws -> ClientInputs {
        var out = try read(scenario: scenario, base: base, mine: placement.clients(onRank: world.rank), settings: settings,
                           world: world, verifiedHash: verifiedHash, label: { placement.label($0) })
        if settings.cacheVisionFeatures ?? true, base.stored.visionTower != nil {
            try out.cacheVisionFeatures(scenario: scenario, placement: placement, first: settings.evalFirstExample, world: world)
            out.visionFeaturesCached = true
            // every batch now carries its features: the tower's weights are not needed by the rounds
            out.lm?.visionTower?.releaseWeights()
        }
        return out
    }

    /// The LM, the codec, this rank's clients' shards and their tasks' test splits, prepared. Collective.
    static func read(scenario: ScenarioDirectory, base: BaseFiles, mine: Range<Int>, settings: RoundSettings,
                     world: any Communicator, verifiedHash: String? = nil, label: @escaping (Int) -> String) throws -> ClientInputs {
        let first = settings.evalFirstExample, maxExamples = settings.evalMaxExamples
        return try RankCheck.run(base.stored.lm == nil ? "loading the client data" : "loading the LM and the client data",
                                 on: world, label: label) { () -> ClientInputs in
            var out = ClientInputs(clientTasks: scenario.clientTasks)
            if world.rank == 0 {
                if base.stored.lm == nil { out.codec = WordLevelCodec(try base.tokenizer()) }
                return out
            }
            out.lm = try PretrainedBase.load(for: base.config, context: "the base checkpoint '\(base.path)'", lmPath: base.lmPath,
                                             towerPath: base.towerPath, sharedWeights: base.sharedWeights, verifiedHash: verifiedHash)
            let codec: any ExampleCodec = try out.lm.map { try ChatCodec(base: $0) } ?? WordLevelCodec(try base.tokenizer())
            out.codec = codec
            let batcher = try Batcher(config: base.config, codec: codec, truncate: true)
            for k in mine {
                let shard: Shard
                do { shard = try scenario.client(k) } catch { throw mine.count == 1 ? error : PilotError.message("client \(k): \(error)") }
                out.shardHashes[k] = try RoundCheckpoint.fileDigest(scenario.clientPath(k))
                // n_k = 0 would train nothing, store a loss of 0 and weigh 0/0 in Pilot's task means
                guard !shard.examples.isEmpty else {
                    throw PilotError.invalidArgument("client \(k)'s shard \(scenario.clientPath(k)) has no examples; every client needs at least one training example (rebuild the scenario, or remove the client from it)")
                }
                out.train[k] = try batcher.prepare(shard.examples)
                let task = scenario.clientTasks[k]
                if out.test[task] == nil {
                    let split = try scenario.test(task).examples
                    guard first < split.count else {
                        throw PilotError.invalidArgument("eval.first_example = \(first) is past the end of the \(task.rawValue) test split (\(split.count) examples); use a value below \(split.count)")
                    }
                    out.test[task] = try batcher.prepare(Array(split.dropFirst(first).prefix(maxExamples)))
                }
            }
            return out
        }
    }
}

/// The base checkpoint a run trains from: its path, its stored model config, the config with the
/// run's `model.*` overrides applied, and where this machine keeps the LM and the vision tower.
struct BaseFiles {
    var path: String
    var stored: ModelConfig
    var config: ModelConfig
    var lmPath: String?
    var towerPath: String?
    /// OpenBLAS's kernel the base was made with (nil: not recorded).
    var madeWith: String?
    /// The node's prepared copy of the imported LM that the client ranks map (nil: each loads its own;
    /// `model.share_base`, `model.weights_cache`).
    var sharedWeights: String?

    /// The word-level tokenizer of a base on the built-in LM.
    func tokenizer() throws -> Tokenizer {
        let f = try H5File.open(path)
        defer { f.close() }
        return try Tokenizer.read(from: f, group: "/tokenizer")
    }
}
