import PilotComm
import PilotCore
import PilotData
import PilotHDF5
import PilotJob
import PilotModel
import PilotTensor

extension RoundLoop {
    /// Collective over `world`: places the clients, checks the settings and the base checkpoint, and
    /// loads every rank's inputs. What every rank reads from the same files fails the same way on
    /// each; `RankCheck` reports it once. `events` receives rank 0's events.
    public convenience init(config: RunConfig, runDirectory: String, world: any Communicator, events: @escaping (RoundEvent) -> Void) throws {
        let typed = try RunSettings(config)
        let settings = RoundSettings(typed)
        let emit: (RoundEvent) -> Void = world.rank == 0 ? events : { _ in }
        let scenario = try ScenarioDirectory(path: typed.run.data)
        let tasks = scenario.tasks
        let clientTasks = scenario.clientTasks.map { t in tasks.firstIndex(of: t)! }
        let placement = try RankCheck.run("placing \(clientTasks.count) clients on \(world.size) ranks", on: world) {
            try typed.placement(clients: clientTasks.count, worldSize: world.size, clientTasks: scenario.clientTasks.map(\.rawValue))
        }
        try RankCheck.run("checking that every host runs the same pilot build and reads the same base", on: world) {
            try HostConsistency.check(world: world, basePath: typed.run.base)
        }
        try RankCheck.run("checking that every rank can write to the run directory", on: world, label: { placement.label($0) }) {
            try HostConsistency.probeRunDirectory(runDirectory, rank: world.rank)
        }
        let strategy = StrategyFactory.make(typed)
        let base = try RankCheck.run("checking the base checkpoint", on: world) { try Self.checkBase(typed, scenario: scenario) }
        if let made = base.madeWith, made != BLASRuntime.coreName {
            emit(.message("warning: the base checkpoint \(base.path) was made with OpenBLAS's \(made) kernel and this run runs \(BLASRuntime.coreName); the run is correct but its bits match another machine's only with one kernel in both: `pilot pretrain --blas-core \(made.lowercased())` and run.blas_core = \"\(made.lowercased())\" (docs/robustness.md); run.strict_reproducibility = true refuses it"))
        }
        let mine = placement.clients(onRank: world.rank)
        let shared = try ClientInputs.prepareSharedBase(base, world: world, isClient: !mine.isEmpty, label: { placement.label($0) })
        for line in shared.log { emit(.message("shared LM: " + line)) }
        let inputs = try ClientInputs.load(scenario: scenario, base: base, placement: placement, settings: settings, world: world,
                                           verifiedHash: shared.hash)
        if let line = try inputs.visionFeatureSummary(hasTower: base.stored.visionTower != nil, world: world) { emit(.message(line)) }
        if settings.recomputeActivations {
            emit(.message("activation recomputation: on (train.recompute_activations): the LM keeps each layer's input and recomputes the layer in the backward pass (the same bits, less memory, more time)"))
        }
        var cut = [Int64(inputs.train.values.map(\.truncation.truncated).reduce(0, +)), Int64(inputs.train.values.map(\.truncation.total).reduce(0, +))]
        try world.allreduce(&cut, op: .sum)
        if let line = TruncationCount(truncated: Int(cut[0]), total: Int(cut[1])).message(textLength: base.config.textLength, what: "client training data") {
            emit(.message(line))
        }
        let federation = try Federation(world: world, clientTasks: clientTasks, numTasks: tasks.count, placement: placement,
                                        localSamples: mine.map { inputs.train[$0]!.count }, sampling: settings.sampling,
                                        lora: typed.clientLoRA)
        let baseHash = world.rank == 0 ? try RoundCheckpoint.fileDigest(base.path) : ""
        var identity = RunIdentity(
            algorithm: strategy.name, configText: config.effectiveFile, configHash: config.hash,
            baseHash: baseHash, shardHashes: inputs.shardHashes,
            taskNames: tasks.map(\.rawValue),
            metricsAttributes: ["algorithm": .string(strategy.name), "scenario": .string(scenario.scenario.rawValue),
                                "client_tasks": .strings(scenario.clientTasks.map(\.rawValue)), "tasks": .strings(tasks.map(\.rawValue)),
                                "config": .string(config.effectiveFile), "config_sha256": .string(config.hash),
                                "world_size": .int(Int64(world.size))])
        if let lm = base.config.lm { identity.metricsAttributes["base_dtype"] = .string(lm.baseDType.rawValue) }
        if let dtype = base.config.lm?.baseDType, dtype != .f32 {   // bf16 and q8 products run on the kernel where there is one
            identity.bf16Kernel = BF16Kernel.runName
            identity.metricsAttributes["bf16_kernel"] = .string(identity.bf16Kernel)
        }
        if let lora = typed.clientLoRA {
            identity.loraRanks = lora.ranks
            identity.metricsAttributes["lora_ranks"] = .ints(lora.ranks.map(Int64.init))
        }
        if base.stored.visionTower != nil { identity.metricsAttributes["vision_feature_cache"] = .string(inputs.visionFeaturesCached ? "on" : "off") }
        let host = ClientHost(settings: settings, strategy: strategy, federation: federation, inputs: inputs,
                              basePath: base.path, overrides: typed.modelOverrides)
        host.faults = ClientFaults(settings.faults)
        host.coder = typed.compression.map { ExchangeCoder(up: $0.up, down: $0.down, fraction: $0.fraction, updatesAreChanges: strategy is FedAdamStrategy) }
        let server = ServerStep(strategy: strategy, roster: federation.roster, robust: settings.robust, dp: settings.dp,
                                seed: UInt64(settings.seed), minimumUpdates: settings.sampling.minClients,
                                describe: { "client \($0) (\(placement.label(placement.rank(of: $0))))" })
        let recorder = RoundRecorder(runDirectory: runDirectory, federation: federation, settings: settings, identity: identity, emit: emit)
        self.init(config: config, settings: settings, runDirectory: runDirectory, federation: federation, strategy: strategy,
                  scenario: scenario, basePath: base.path, host: host, server: server, recorder: recorder, emit: emit)
        if let mode = typed.secureMode, let averaging = strategy as? any SecureAveraging {
            secure = SecureRound(mode: mode, strategy: averaging, federation: federation, dp: settings.dp, seed: UInt64(settings.seed),
                                 minimumUpdates: settings.sampling.minClients)
            emit(.message(SecureRound.summary(mode)))
        }
    }

    /// The base checkpoint, checked against the scenario and the config's `model.*` keys.
    static func checkBase(_ settings: RunSettings, scenario: ScenarioDirectory) throws -> BaseFiles {
        let basePath = settings.run.base
        let (stored, baseInfo) = try BaseCheckpoint.readMetadata(path: basePath)
        if !baseInfo.scenario.isEmpty && baseInfo.scenario != scenario.scenario.rawValue {
            throw PilotError.invalidArgument("the base checkpoint '\(basePath)' was pretrained on the \(baseInfo.scenario) scenario, but run.data '\(scenario.path)' is the \(scenario.scenario.rawValue) scenario; pretrain a base on this data (`pilot pretrain --data \(scenario.path)`) or point run.base at the \(scenario.scenario.rawValue) base")
        }
        let baseConfig = settings.modelOverrides.apply(to: stored)
        try baseConfig.validate()
        try settings.checkLoRARankDimensions(baseConfig)
        let lmPath = settings.model.lm, towerPath = settings.model.visionTower
        if lmPath != nil && stored.lm == nil {
            throw PilotError.invalidArgument("model.lm is set but the base checkpoint '\(basePath)' was pretrained on the built-in LM; pretrain a base on the LM (`pilot pretrain --lm DIR`) or remove model.lm")
        }
        if settings.model.cacheVisionFeatures == true && stored.visionTower == nil {
            throw PilotError.invalidArgument("model.cache_vision_features = true, but the base checkpoint '\(basePath)' uses the built-in ViT, whose features are not cached (only a frozen CLIP tower's are); remove the key, or pretrain a base with `pilot pretrain --vision-tower DIR`")
        }
        if towerPath != nil && stored.visionTower == nil {
            throw PilotError.invalidArgument("model.vision_tower is set but the base checkpoint '\(basePath)' was pretrained with the built-in ViT; remove model.vision_tower, or pretrain a base with `pilot pretrain --vision-tower DIR`")
        }
        if let made = baseInfo.blasCore, made != BLASRuntime.coreName, settings.run.strictReproducibility == true {
            throw PilotError.invalidArgument("the base checkpoint '\(basePath)' was made with OpenBLAS's \(made) kernel and this run runs \(BLASRuntime.coreName) (run.strict_reproducibility = true): pin both to one kernel, `pilot pretrain --blas-core \(made.lowercased())` and run.blas_core = \"\(made.lowercased())\", or remake the base on this kernel")
        }
        let shared = settings.model.shareBase ?? true
            ? PretrainedBase.sharedWeightsPath(for: baseConfig, lmPath: lmPath, cacheDirectory: settings.model.weightsCache) : nil
        return BaseFiles(path: basePath, stored: stored, config: baseConfig, lmPath: lmPath, towerPath: towerPath, madeWith: baseInfo.blasCore,
                         sharedWeights: shared)
    }
}
