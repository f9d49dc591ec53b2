import Foundation
import PilotComm
import PilotCore
import PilotData
import PilotHDF5
import PilotModel

/// The one round loop that every strategy runs in. Per round:
/// train (clients, local data only) → communicate + aggregate (strategy, through the
/// communicator) → evaluate (every `eval_every` rounds) → checkpoint → stop if a signal asked.
public final class RoundLoop {
    public enum Outcome: Equatable, Sendable { case finished(rounds: Int), stopped(afterRound: Int) }

    public let config: RunConfig
    public let runDirectory: String
    let federation: Federation
    let strategy: FederatedStrategy
    let scenario: ScenarioDirectory
    let basePath: String
    let report: (String) -> Void
    /// This client's data (nil on the server): only its own shard is ever read.
    let train: PreparedExamples?
    let test: [Example]
    /// How this rank's examples become text (nil on the server of a run on an imported LM, which
    /// never tokenizes).
    let codec: (any ExampleCodec)?
    /// The imported frozen LM, loaded once per rank and shared by every model this rank builds
    /// (nil for the built-in LM, and on the server, which only aggregates adapters).
    let lm: PretrainedBase?
    let taskNames: [String]
    var state: TensorDict?
    var log = MetricsLog()

    /// Collective over `world`. `report` receives rank 0's progress lines.
    public init(config: RunConfig, runDirectory: String, world: any Communicator, report: @escaping (String) -> Void) throws {
        self.config = config
        self.runDirectory = runDirectory
        self.report = report
        let scenario = try ScenarioDirectory(path: config.path("run.data"))
        self.scenario = scenario
        basePath = config.path("run.base")
        let tasks = scenario.tasks
        taskNames = tasks.map(\.rawValue)
        let clientTasks = scenario.clientTasks.map { t in tasks.firstIndex(of: t)! }
        let basePathForCheck = basePath
        // What every rank reads from the same files fails the same way on each; RankCheck prints it once.
        let (stored, baseConfig) = try RankCheck.run("checking the base checkpoint", on: world) { () -> (ModelConfig, ModelConfig) in
            let basePath = basePathForCheck
            let (stored, baseInfo) = try BaseCheckpoint.readMetadata(path: basePath)
            if !baseInfo.scenario.isEmpty && baseInfo.scenario != scenario.scenario.rawValue {
                throw PilotError.invalidArgument("the base checkpoint '\(basePath)' was pretrained on the \(baseInfo.scenario) scenario, but run.data '\(scenario.path)' is the \(scenario.scenario.rawValue) scenario; pretrain a base on this data (`pilot pretrain --data \(scenario.path)`) or point run.base at the \(scenario.scenario.rawValue) base")
            }
            let baseConfig = config.modelOverrides.apply(to: stored)
            try baseConfig.validate()
            if config.optionalString("model.lm") != nil && stored.lm == nil {
                throw PilotError.invalidArgument("model.lm is set but the base checkpoint '\(basePath)' was pretrained on the built-in LM; pretrain a base on the LM (`pilot pretrain --lm DIR`) or remove model.lm")
            }
            if config.optionalString("model.vision_tower") != nil && stored.visionTower == nil {
                throw PilotError.invalidArgument("model.vision_tower is set but the base checkpoint '\(basePath)' was pretrained with the built-in ViT; remove model.vision_tower, or pretrain a base with `pilot pretrain --vision-tower DIR`")
            }
            return (stored, baseConfig)
        }
        let lmReference = stored.lm
        let lmPath = config.optionalString("model.lm"), towerPath = config.optionalString("model.vision_tower")
        let basePath = self.basePath
        let first = config.int("eval.first_example"), maxExamples = config.int("eval.max_examples")
        // Every client rank loads the LM (checking its hash) and its own shard; a failure on any rank
        // is reported once by rank 0, naming the rank and the client.
        let loaded = try RankCheck.run(lmReference == nil ? "loading the client data" : "loading the LM and the client data",
                                       on: world, label: { $0 == 0 ? "rank 0 (server)" : "rank \($0) (client \($0 - 1))" }) {
            () -> (PretrainedBase?, (any ExampleCodec)?, PreparedExamples?, [Example]) in
            if world.rank == 0 {
                guard lmReference == nil else { return (nil, nil, nil, []) }
                let f = try H5File.open(basePath)
                defer { f.close() }
                return (nil, WordLevelCodec(try Tokenizer.read(from: f, group: "/tokenizer")), nil, [])
            }
            let lm = try PretrainedBase.load(for: stored, context: "the base checkpoint '\(basePath)'", lmPath: lmPath, towerPath: towerPath)
            let codec: any ExampleCodec
            if let lm { codec = try ChatCodec(base: lm) } else {
                let f = try H5File.open(basePath)
                defer { f.close() }
                codec = WordLevelCodec(try Tokenizer.read(from: f, group: "/tokenizer"))
            }
            let k = world.rank - 1
            let shard = try scenario.client(k)
            // n_k = 0 would train nothing, store a loss of 0 and weigh 0/0 in Pilot's task means
            guard !shard.examples.isEmpty else {
                throw PilotError.invalidArgument("client \(k)'s shard \(scenario.clientPath(k)) has no examples; every client needs at least one training example (rebuild the scenario, or remove the client from it)")
            }
            let local = try Batcher(config: baseConfig, codec: codec, truncate: true).prepare(shard.examples)
            let split = try scenario.test(scenario.clientTasks[k]).examples
            guard first < split.count else {
                throw PilotError.invalidArgument("eval.first_example = \(first) is past the end of the \(scenario.clientTasks[k].rawValue) test split (\(split.count) examples); use a value below \(split.count)")
            }
            return (lm, codec, local, Array(split.dropFirst(first).prefix(maxExamples)))
        }
        (lm, codec, train, test) = loaded
        var cut = [Int64(train?.truncation.truncated ?? 0), Int64(train?.truncation.total ?? 0)]
        try world.allreduce(&cut, op: .sum)
        if world.isRoot, let line = TruncationCount(truncated: Int(cut[0]), total: Int(cut[1])).message(textLength: baseConfig.textLength, what: "client training data") {
            report(line)
        }
        federation = try Federation(world: world, clientTasks: clientTasks, numTasks: tasks.count, localSamples: train?.count ?? 0)
        strategy = try RoundLoop.makeStrategy(config)
    }

    static func makeStrategy(_ c: RunConfig) throws -> FederatedStrategy {
        switch c.string("run.algorithm") {
        case "local": return LocalStrategy(learningRate: c.double("train.lr"))
        case "centralized": return CentralizedStrategy(learningRate: c.double("train.lr"))
        case "fedavg": return FedAvgStrategy(learningRate: c.double("train.lr"))
        case "fedprox": return FedProxStrategy(learningRate: c.double("train.lr"), mu: Float(c.double("fedprox.mu")))
        case "shepherd": return ShepherdStrategy(learningRate: c.double("train.lr"))
        case "feddpa": return FedDPAStrategy(learningRate: c.double("train.lr"), supportPrompts: c.int("feddpa.support"))
        case "fedadam":
            var h = FedAdamServer.Hyper()
            h.eta = c.double("fedadam.eta"); h.beta1 = c.double("fedadam.beta1"); h.beta2 = c.double("fedadam.beta2")
            h.tau = c.double("fedadam.tau"); h.biasCorrected = c.bool("fedadam.bias_correction")
            return FedAdamStrategy(learningRate: c.double("train.lr"), hyper: h)
        case "pilot":
            var s = PilotStrategy.Settings()
            s.lrStage1 = c.double("train.lr_stage1")
            s.lrStage2 = c.double("train.lr_stage2")
            s.connector.lambdaDiff = c.bool("pilot.diff_loss") ? Float(c.double("pilot.lambda_diff")) : 0
            let aux = c.bool("pilot.aux_losses")
            s.connector.lambdaBalance = aux ? Float(c.double("pilot.lambda_balance")) : 0
            s.connector.lambdaZ = aux ? Float(c.double("pilot.lambda_z")) : 0
            s.connector.diffNormalization = c.string("pilot.diff_normalization") == "raw_frobenius" ? .rawFrobenius : .rowL2Mean
            s.connector.routerTopK = c.int("pilot.router_top_k") == 0 ? nil : c.int("pilot.router_top_k")
            s.connector.clientAdapterInStage2 = .init(rawValue: c.string("pilot.client_adapter_stage2"))!
            s.connector.crossTaskInit = c.string("pilot.cross_task_init") == "random" ? .random : .copyOfLocal
            s.crossTask = c.bool("pilot.cross_task")
            s.ata = c.bool("pilot.ata")
            s.ataSelection = ATASelection(rawValue: c.string("pilot.ata_selection"))!
            s.ataM = c.int("pilot.ata_m")
            s.ataNormalisation = ATANormalisation(rawValue: c.string("pilot.ata_z"))!
            return PilotStrategy(settings: s)
        case let other:
            throw PilotError.invalidArgument("run.algorithm \"\(other)\" is not implemented")
        }
    }

    /// Seed of client k's data order in a round (counter-based, so nothing needs saving).
    func dataSeed(round: Int, client: Int) -> UInt64 {
        var s = SplitMix64(seed: UInt64(config.int("run.seed")) &* 0x9E37_79B9 &+ UInt64(round) &* 1_000_003 &+ UInt64(client))
        return s.next()
    }

    /// Runs rounds after `startRound` (0 for a new run) until R, or until a stop signal.
    /// Called on rank 0 when a phase of a round starts ("train", "communicate", "evaluate",
    /// "checkpoint"), e.g. to draw a progress indicator on a terminal.
    public var phaseStarted: ((_ round: Int, _ phase: String) -> Void)?

    /// Test hook: behave as if a stop signal arrived during this round.
    public var simulateStopAfterRound: Int?

    public func run(resume: Bool) throws -> Outcome {
        let world = federation.world
        var start = 0
        if resume, let last = try RoundCheckpoint.latestRound(run: runDirectory) {
            start = last
            try restore(round: last)
        }
        let rounds = config.int("run.rounds")
        if start >= rounds {
            if world.isRoot { report("run already complete (\(rounds) rounds); nothing to do") }
            return .finished(rounds: rounds)
        }
        // A commit killed before its rename leaves its temporary file; nothing is writing yet, so rank 0
        // removes them before any rank writes (the barrier) and says so.
        if world.isRoot {
            let removed = RoundCheckpoint.removeStaleTemporaries(run: runDirectory)
            if !removed.isEmpty {
                report("removed \(removed.count) temporary file(s) that an interrupted commit left in \(RoundCheckpoint.directory(runDirectory)): \(removed.prefix(4).joined(separator: ", "))\(removed.count > 4 ? ", …" : "")")
            }
        }
        try world.barrier()
        for round in (start + 1)...rounds {
            let roundStart = Date()
            world.resetCounts()
            var m = ClientRoundMetrics()
            var stage = 0
            var model: MLLM? = nil
            if world.isRoot { phaseStarted?(round, "train") }
            let plans = strategy.configure(round: round, federation: federation)
            if let client = federation.client, let train, let plan = plans.first(where: { $0.client == client }) {
                let spec = plan.spec
                stage = spec.stage
                let t0 = Date()
                var opt = AdamW.Parameters()
                opt.weightDecay = Float(config.double("train.weight_decay"))
                let clip = config.double("train.max_grad_norm")
                opt.maxGradNorm = clip > 0 ? Float(clip) : nil
                let (built, _) = try BaseCheckpoint.load(path: basePath, variant: spec.variant, options: spec.options,
                                                         trainable: spec.trainable, maxBatch: config.int("train.batch_size"),
                                                         seed: UInt64(config.int("run.seed")), optimizer: opt,
                                                         base: lm, overrides: config.modelOverrides)
                try strategy.prepare(model: built, round: round, client: client, state: state, federation: federation)
                let losses = try trainLocally(built, data: train, spec: spec, seed: dataSeed(round: round, client: client))
                m["loss_total"] = losses.total; m["loss_ce"] = losses.ce; m["loss_diff"] = losses.diff
                m["loss_balance"] = losses.balance; m["loss_z"] = losses.z; m["loss_proximal"] = losses.proximal
                m["steps"] = Double(losses.steps)
                m["seconds_train"] = Date().timeIntervalSince(t0)
                model = built
            } else {
                stage = plans.first?.spec.stage ?? 0
            }
            // Everyone waits for the slowest client here; that wait is training time, not communication.
            // No client's non-finite update reaches the aggregation (it would spread to every client within
            // the round): the run stops with the client named and the previous round still the latest.
            // The check runs on the uncounted communicator, so the round's byte counts are the exchange's.
            let trained = model, losses = m
            try RankCheck.run("checking the trained updates before aggregation in round \(round)", on: world.base,
                              label: { $0 == 0 ? "rank 0 (server)" : "rank \($0) (client \($0 - 1))" }) {
                guard let trained else { return }
                if let hook = ProcessInfo.processInfo.environment["PILOT_TEST_POISON_CLIENT"], Int(hook) == federation.client {
                    trained.parameters.trainable.pointer[0] = .nan   // test hook: a diverged client
                }
                try RoundLoop.checkFinite(trained, loss: losses["loss_total"], round: round)
            }
            if world.isRoot { phaseStarted?(round, "communicate + aggregate") }
            let t1 = Date()
            federation.aggregationClock.reset()
            let newState = try strategy.communicate(round: round, model: model, federation: federation)
            m["seconds_communicate"] = Date().timeIntervalSince(t1)
            // The server's aggregation time, which every client waited for inside the collectives.
            let aggregateSeconds = try world.broadcast(scalar: federation.aggregationClock.seconds, root: 0)
            m["seconds_aggregate"] = aggregateSeconds
            m["bytes_sent"] = Double(world.bytesSent)
            m["bytes_received"] = Double(world.bytesReceived)
            let serverBytes = [Double(world.bytesSent), Double(world.bytesReceived)]
            let serverAggregate = aggregateSeconds
            if federation.client != nil { state = newState }

            let evalEvery = config.int("run.eval_every")
            if world.isRoot { phaseStarted?(round, "evaluate") }
            let evaluate = round == rounds || (evalEvery > 0 && round % evalEvery == 0)
            if evaluate, let model, let state, let client = federation.client, let codec, let train {
                let t2 = Date()
                try loadPersonalised(model, state: state, client: client)
                let task = scenario.clientTasks[client]
                let batchSize = min(config.int("eval.batch_size"), model.maxBatch)
                let metrics = try strategy.evaluate(EvaluationContext(model: model, examples: test, training: train, codec: codec, task: task,
                                                                      batchSize: batchSize, maxNewTokens: config.int("eval.max_new_tokens")))
                for (key, value) in metrics { m[key] = value }
                m["seconds_evaluate"] = Date().timeIntervalSince(t2)
            }
            model = nil

            // Metrics: every client's row reaches the server before the commit, and the round file keeps
            // its deterministic fields, so a row that metrics.h5 lost (a kill between the commit and the
            // metrics write, a deleted file) is rebuilt on resume.
            var rows = try world.gatherv(m.values, root: 0)

            if world.isRoot { phaseStarted?(round, "checkpoint") }
            let t3 = Date()
            let meta = RoundCheckpoint.Metadata(round: round, stage: stage, algorithm: strategy.name, configText: config.effectiveFile,
                                                configHash: config.hash, seed: config.int("run.seed"), worldSize: world.size)
            try RoundCheckpoint.write(run: runDirectory, metadata: meta, federation: federation, clientState: state,
                                      clientSeed: federation.client.map { dataSeed(round: round, client: $0) } ?? 0,
                                      serverState: federation.isServer ? strategy.serverState() : [:],
                                      metrics: federation.isServer ? .init(clients: rows.dropFirst().map { ClientRoundMetrics(values: $0) },
                                                                           server: serverBytes) : nil)
            m["seconds_checkpoint"] = Date().timeIntervalSince(t3)
            let checkpointSeconds = try world.gatherv([m["seconds_checkpoint"]], root: 0)
            let checkpointField = ClientRoundMetrics.fields.firstIndex(of: "seconds_checkpoint")!
            for r in rows.indices where r < checkpointSeconds.count && !rows[r].isEmpty { rows[r][checkpointField] = checkpointSeconds[r].first ?? .nan }
            if federation.isServer {
                let clientRows = rows.dropFirst().map { ClientRoundMetrics(values: $0) }
                log.append(round: round, stage: stage, clients: Array(clientRows),
                           server: serverBytes + [serverAggregate, Date().timeIntervalSince(roundStart), m["seconds_checkpoint"]])
                try log.write(to: runDirectory + "/metrics.h5", attributes: metricsAttributes())
                report(roundLine(round: round, stage: stage, rows: Array(clientRows), seconds: Date().timeIntervalSince(roundStart)))
            }
            if simulateStopAfterRound == round { StopSignal.request() }
            let stop = try world.allreduce(scalar: Int64(StopSignal.requested ? 1 : 0), op: .max) > 0
            if stop && round < rounds {
                if world.isRoot { report("stop requested by signal: round \(round) is committed; resume with `pilot train --resume \(runDirectory)`") }
                return .stopped(afterRound: round)
            }
        }
        return .finished(rounds: rounds)
    }

    /// Throws, naming the first tensor and how many values, when a client's trained parameters or its
    /// training loss are not finite.
    static func checkFinite(_ model: MLLM, loss: Double, round: Int) throws {
        let t = model.parameters.trainable
        var bad = 0, first = -1
        for i in 0..<t.count where !t.pointer[i].isFinite { bad += 1; if first < 0 { first = i } }
        if bad > 0 {
            let entry = model.parameters.entries.first { $0.trainable && first >= $0.offset && first < $0.offset + $0.shape.reduce(1, *) }
            let name = entry.map { "\($0.name)[\(first - $0.offset)]" } ?? "value \(first)"
            throw PilotError.message("its trained update has \(bad) non-finite value(s) (first: \(name) = \(t.pointer[first])), training loss \(loss); the round is not aggregated and \(round > 1 ? "round \(round - 1) stays the latest checkpoint" : "no round is committed"). Lower the learning rate (train.lr, train.lr_stage1/2) or check this client's data, then resume")
        }
        if !loss.isFinite {
            throw PilotError.message("its training loss is \(loss) (the parameters are still finite); the round is not aggregated and \(round > 1 ? "round \(round - 1) stays the latest checkpoint" : "no round is committed"). Lower the learning rate or check this client's data, then resume")
        }
    }

    struct LocalLosses { var total = 0.0, ce = 0.0, diff = 0.0, balance = 0.0, z = 0.0, proximal = 0.0, steps = 0 }

    /// E epochs over the client's shard in a seeded order, batch by batch (a short last batch
    /// included), with warm-up then a cosine decay over the round's steps.
    func trainLocally(_ model: MLLM, data: PreparedExamples, spec: ModelSpec, seed: UInt64) throws -> LocalLosses {
        let B = config.int("train.batch_size")
        let epochs = config.int("train.epochs")
        let perEpoch = (data.count + B - 1) / B
        var total = epochs * perEpoch
        let cap = config.int("train.max_steps")
        if cap > 0 { total = min(total, cap) }
        let clients = strategy.dataParallel ? federation.clients : nil
        if let clients {
            // Every client takes the same number of steps; a smaller shard wraps around its order.
            total = Int(try clients.allreduce(scalar: Int64(total), op: .max))
        }
        let schedule = LRSchedule(peak: Float(spec.learningRate), minimum: Float(spec.learningRate) * 0.1,
                                  warmupSteps: min(config.int("train.warmup_steps"), max(0, total - 1)), totalSteps: max(total, 1))
        model.optimizer.reset()
        var out = LocalLosses()
        var step = 0
        var rng = PilotRNG(seed: seed)
        if clients != nil && perEpoch == 0 { throw PilotError.message("centralized training: this client has no training examples") }
        var epoch = 0
        epochLoop: while step < total {
            if epoch >= epochs && clients == nil { break }
            epoch += 1
            var order = Array(0..<data.count)
            for i in stride(from: order.count - 1, to: 0, by: -1) { order.swapAt(i, rng.int(i + 1)) }
            for b in 0..<perEpoch {
                if step >= total { break epochLoop }
                let idx = order[(b * B)..<min((b + 1) * B, order.count)]
                let parts: LossParts
                if let clients {
                    parts = try model.forwardBackward(data.batch(idx))
                    try Self.sumGradients(model, targets: parts.targets, over: clients)
                    model.optimizer.step(params: model.parameters.trainable, grads: model.parameters.gradients,
                                         lr: schedule.rate(at: step))
                } else {
                    parts = try model.trainStep(data.batch(idx), learningRate: schedule.rate(at: step))
                }
                out.total += parts.total; out.ce += parts.ce; out.diff += parts.diff
                out.balance += parts.balance; out.z += parts.z; out.proximal += parts.proximal
                step += 1
            }
        }
        let n = Double(max(step, 1))
        out.total /= n; out.ce /= n; out.diff /= n; out.balance /= n; out.z /= n; out.proximal /= n
        out.steps = step
        return out
    }

    /// Data-parallel step: turns this client's gradient of its batch's mean loss into its share of the
    /// union batch's (weight targets_k / Σ targets) and sums the shares over `clients` in rank order,
    /// so every client ends with the same gradient.
    static func sumGradients(_ model: MLLM, targets: Int, over clients: any Communicator) throws {
        let total = try clients.allreduce(scalar: Int64(targets), op: .sum)
        let grads = model.parameters.gradients
        let w = total > 0 ? Float(Double(targets) / Double(total)) : 0
        if w != 1 { let g = grads.pointer; for i in 0..<grads.count { g[i] *= w } }
        try clients.allreduce(grads.buffer, op: .sum)
    }

    /// Puts the personalised (post-aggregation) state into the trained model for evaluation.
    func loadPersonalised(_ model: MLLM, state: TensorDict, client: Int) throws {
        try Self.putPersonalised(model, state: state, task: federation.clientTasks[client])
    }

    static func putPersonalised(_ model: MLLM, state: TensorDict, task t: Int) throws {
        try model.assign(state)
        if model.variant == .pilotStage1 {
            // Stage 1 has one task adapter: evaluate with this task's aggregated one.
            let prefix = "connector/task_adapters/\(t)/"
            var mapped = TensorDict()
            for (k, v) in state where k.hasPrefix(prefix) { mapped["connector/task_adapter/" + k.dropFirst(prefix.count)] = v }
            try model.assign(mapped)
        }
    }

    func restore(round: Int) throws {
        let world = federation.world
        var digests: [String] = []
        var storedText = ""
        if federation.isServer {
            let (meta, server, d) = try RoundCheckpoint.readRound(run: runDirectory, round: round)
            storedText = meta.configText
            digests = d
            try strategy.restoreServerState(server)
            if FileManager.default.fileExists(atPath: runDirectory + "/metrics.h5") {
                log = try MetricsLog.read(from: runDirectory + "/metrics.h5")
                log.truncate(to: round)
            } else {
                report("\(runDirectory)/metrics.h5 is missing; rebuilding its rows from the round checkpoints")
            }
            // Rows metrics.h5 lacks (a kill between the round's commit and the metrics write, or a deleted
            // file) come back from the round files, without the timings, which are not stored there.
            let have = Set(log.rounds)
            var rebuilt: [Int] = [], lost: [Int] = []
            for r in 1...round where !have.contains(r) {
                if let row = try RoundCheckpoint.readMetrics(run: runDirectory, round: r) {
                    log.insert(round: r, stage: row.stage, clients: row.clients, server: row.server)
                    rebuilt.append(r)
                } else {
                    lost.append(r)
                }
            }
            if !rebuilt.isEmpty {
                try log.write(to: runDirectory + "/metrics.h5", attributes: metricsAttributes())
                report("metrics.h5 had no row for round(s) \(rebuilt.map(String.init).joined(separator: ", ")); rebuilt from the round checkpoints (losses, steps, scores and bytes; the seconds are NaN)")
            }
            if !lost.isEmpty {
                report("warning: metrics.h5 has no row for round(s) \(lost.map(String.init).joined(separator: ", ")), and those round files predate stored metrics; the rows stay missing")
            }
        }
        storedText = try world.broadcast(string: storedText, root: 0)
        // every rank finds the same difference; RankCheck prints it once
        try RankCheck.run("resuming \(runDirectory)", on: world) {
            let stored = try RunConfig(effectiveFile: storedText, path: RoundCheckpoint.roundFile(runDirectory, round))
            if stored.values != config.values {
                let diff = config.differences(from: stored)
                throw PilotError.message("refusing to resume \(runDirectory): the config differs from the one the run was started with:\n  "
                                         + diff.joined(separator: "\n  ") + "\nresume with the original config, or start a new run directory")
            }
        }
        let allDigests = try world.broadcastSized(Array(digests.joined(separator: "\n").utf8), root: 0)
        let list = String(decoding: allDigests, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if let client = federation.client {
            state = try RoundCheckpoint.readClient(run: runDirectory, round: round, client: client,
                                                   expectedDigest: client < list.count ? list[client] : nil)
        }
        if world.isRoot { report("resumed \(runDirectory) after round \(round)") }
    }

    func metricsAttributes() -> [String: H5AttributeValue] {
        ["algorithm": .string(strategy.name), "scenario": .string(scenario.scenario.rawValue),
         "client_tasks": .strings(scenario.clientTasks.map(\.rawValue)), "tasks": .strings(taskNames),
         "config": .string(config.effectiveFile), "config_sha256": .string(config.hash)]
    }

    func roundLine(round: Int, stage: Int, rows: [ClientRoundMetrics], seconds: Double) -> String {
        func mean(_ f: String) -> Double { rows.map { $0[f] }.reduce(0, +) / Double(max(rows.count, 1)) }
        let mb = (rows.map { $0["bytes_sent"] + $0["bytes_received"] }.reduce(0, +)) / 1e6
        var line = String(format: "round %d/%d stage %d | loss %.4f (ce %.4f) | train %.1fs comm %.2fs ckpt %.2fs | %.1f MB moved | %.1fs",
                          round, config.int("run.rounds"), stage, mean("loss_total"), mean("loss_ce"),
                          rows.map { $0["seconds_train"] }.max() ?? 0, mean("seconds_communicate"), mean("seconds_checkpoint"), mb, seconds)
        let scores = rows.map { $0["eval_score"] }
        if !scores.contains(where: { $0.isNaN }) {
            line += " | eval " + scores.map { String(format: "%.3f", $0) }.joined(separator: " ")
        }
        return line
    }
}

