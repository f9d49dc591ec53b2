import Foundation
import PilotComm
import PilotCore
import PilotData
import PilotHDF5
import PilotModel

/// The one round loop that every strategy runs in. Per round:
/// configure (the round's clients) → train (each rank its own clients, one after another, on
/// their local data only) → exchange + aggregate (`RoundExchange`, the strategy's pure
/// `aggregate`) → apply → evaluate (every `eval_every` rounds) → checkpoint → stop if a signal
/// asked.
///
/// A rank holds the frozen base once (the imported LM, `lm`), every one of its clients' data and
/// state, and one model at a time: each client's model is built from the base, trained or
/// evaluated, and dropped.
public final class RoundLoop {
    public enum Outcome: Equatable, Sendable { case finished(rounds: Int), stopped(afterRound: Int) }

    public let config: RunConfig
    public let settings: RoundSettings
    public let runDirectory: String
    let federation: Federation
    let strategy: FederatedStrategy
    let scenario: ScenarioDirectory
    let basePath: String
    let report: (String) -> Void
    /// This rank's clients' data, by client (empty on the server): only their own shards are read.
    let train: [Int: PreparedExamples]
    /// The test examples of every task this rank's clients have, by task.
    let test: [FedTask: [Example]]
    /// How this rank's examples become text (nil on the server of a run on an imported LM, which
    /// never tokenizes).
    let codec: (any ExampleCodec)?
    /// The imported frozen LM, loaded once per rank and shared by every model this rank builds
    /// (nil for the built-in LM, and on the server, which only aggregates adapters).
    let lm: PretrainedBase?
    let taskNames: [String]
    /// SHA-256 of each of this rank's clients' shards, and of the base (rank 0): a resume refuses changed inputs.
    var shardHashes: [Int: String] = [:]
    var baseHash = ""
    /// This rank's clients' states (empty before a client's first round).
    var states: [Int: TensorDict] = [:]
    /// The server's state (rank 0).
    var serverState = TensorDict()
    var log = MetricsLog()

    var roster: Roster { federation.roster }
    var label: (Int) -> String { { [placement = federation.placement] in placement.label($0) } }

    /// Collective over `world`. `report` receives rank 0's progress lines.
    public init(config: RunConfig, runDirectory: String, world: any Communicator, report: @escaping (String) -> Void) throws {
        self.config = config
        let settings = RoundSettings(config)
        self.settings = settings
        self.runDirectory = runDirectory
        self.report = report
        let scenario = try ScenarioDirectory(path: config.path("run.data"))
        self.scenario = scenario
        basePath = config.path("run.base")
        let tasks = scenario.tasks
        taskNames = tasks.map(\.rawValue)
        let clientTasks = scenario.clientTasks.map { t in tasks.firstIndex(of: t)! }
        let placement = try RankCheck.run("placing \(clientTasks.count) clients on \(world.size) ranks", on: world) {
            try Placement(clients: clientTasks.count, worldSize: world.size, clientsPerRank: settings.clientsPerRank)
        }
        let strategy = try RoundLoop.makeStrategy(config)
        try RankCheck.run("checking the run's settings", on: world) {
            try settings.sampling.validate(clients: clientTasks.count)
            if strategy.dataParallel && (placement.clientRanks != clientTasks.count || settings.sampling.size(of: clientTasks.count) != clientTasks.count) {
                throw PilotError.invalidArgument("centralized training is data-parallel with one client per rank and every client in every round: run with -np \(clientTasks.count + 1), without run.clients_per_rank > 1 or run.fraction < 1")
            }
        }
        self.strategy = strategy
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
        let first = settings.evalFirstExample, maxExamples = settings.evalMaxExamples
        let mine = placement.clients(onRank: world.rank)
        var hashes: [Int: String] = [:]
        // Every client rank loads the LM once (checking its hash) and its own clients' shards; a failure
        // on any rank is reported once by rank 0, naming the rank and the client.
        let loaded = try RankCheck.run(lmReference == nil ? "loading the client data" : "loading the LM and the client data",
                                       on: world, label: { placement.label($0) }) {
            () -> (PretrainedBase?, (any ExampleCodec)?, [Int: PreparedExamples], [FedTask: [Example]]) in
            if world.rank == 0 {
                guard lmReference == nil else { return (nil, nil, [:], [:]) }
                let f = try H5File.open(basePath)
                defer { f.close() }
                return (nil, WordLevelCodec(try Tokenizer.read(from: f, group: "/tokenizer")), [:], [:])
            }
            let lm = try PretrainedBase.load(for: stored, context: "the base checkpoint '\(basePath)'", lmPath: lmPath, towerPath: towerPath)
            let codec: any ExampleCodec
            if let lm { codec = try ChatCodec(base: lm) } else {
                let f = try H5File.open(basePath)
                defer { f.close() }
                codec = WordLevelCodec(try Tokenizer.read(from: f, group: "/tokenizer"))
            }
            let batcher = try Batcher(config: baseConfig, codec: codec, truncate: true)
            var train: [Int: PreparedExamples] = [:]
            var test: [FedTask: [Example]] = [:]
            hashes = [:]
            for k in mine {
                let shard: Shard
                do { shard = try scenario.client(k) } catch { throw mine.count == 1 ? error : PilotError.message("client \(k): \(error)") }
                hashes[k] = try RoundCheckpoint.fileDigest(scenario.clientPath(k))
                // n_k = 0 would train nothing, store a loss of 0 and weigh 0/0 in Pilot's task means
                guard !shard.examples.isEmpty else {
                    throw PilotError.invalidArgument("client \(k)'s shard \(scenario.clientPath(k)) has no examples; every client needs at least one training example (rebuild the scenario, or remove the client from it)")
                }
                train[k] = try batcher.prepare(shard.examples)
                let task = scenario.clientTasks[k]
                if test[task] == nil {
                    let split = try scenario.test(task).examples
                    guard first < split.count else {
                        throw PilotError.invalidArgument("eval.first_example = \(first) is past the end of the \(task.rawValue) test split (\(split.count) examples); use a value below \(split.count)")
                    }
                    test[task] = Array(split.dropFirst(first).prefix(maxExamples))
                }
            }
            return (lm, codec, train, test)
        }
        (lm, codec, train, test) = loaded
        let localTrain = loaded.2
        shardHashes = hashes
        if world.rank == 0 { baseHash = try RoundCheckpoint.fileDigest(basePath) }
        var cut = [Int64(train.values.map(\.truncation.truncated).reduce(0, +)), Int64(train.values.map(\.truncation.total).reduce(0, +))]
        try world.allreduce(&cut, op: .sum)
        if world.isRoot, let line = TruncationCount(truncated: Int(cut[0]), total: Int(cut[1])).message(textLength: baseConfig.textLength, what: "client training data") {
            report(line)
        }
        federation = try Federation(world: world, clientTasks: clientTasks, numTasks: tasks.count, placement: placement,
                                    localSamples: mine.map { localTrain[$0]!.count }, sampling: settings.sampling)
        for k in mine { states[k] = [:] }
    }

    /// Seed of client k's data order in a round (counter-based, so nothing needs saving).
    func dataSeed(round: Int, client: Int) -> UInt64 {
        var s = SplitMix64(seed: UInt64(settings.seed) &* 0x9E37_79B9 &+ UInt64(round) &* 1_000_003 &+ UInt64(client))
        return s.next()
    }

    /// Called on rank 0 when a phase of a round starts ("train", "communicate", "evaluate",
    /// "checkpoint"), e.g. to draw a progress indicator on a terminal.
    public var phaseStarted: ((_ round: Int, _ phase: String) -> Void)?

    /// Test hook: behave as if a stop signal arrived during this round.
    public var simulateStopAfterRound: Int?

    /// Runs rounds after `startRound` (0 for a new run) until R, or until a stop signal.
    public func run(resume: Bool) throws -> Outcome {
        let world = federation.world
        var start = 0
        if resume, let last = try RoundCheckpoint.latestRound(run: runDirectory) {
            start = last
            try restore(round: last)
        }
        let rounds = settings.rounds
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
            if try runRound(round) && round < rounds {
                if world.isRoot { report("stop requested by signal: round \(round) is committed; resume with `pilot train --resume \(runDirectory)`") }
                return .stopped(afterRound: round)
            }
        }
        return .finished(rounds: rounds)
    }

    /// One round, collective; returns whether a stop was requested.
    func runRound(_ round: Int) throws -> Bool {
        let world = federation.world
        let roundStart = Date()
        world.resetCounts()
        let mine = federation.localClients
        var rows: [Int: ClientRoundMetrics] = [:]
        for c in mine { var row = ClientRoundMetrics(); row["participated"] = 0; rows[c] = row }
        if world.isRoot { phaseStarted?(round, "train") }
        let plans = strategy.configure(round: round, federation: federation)
        let stage = plans.first?.spec.stage ?? 0

        // Train this rank's participants one after another. An update that is not finite, or whose loss
        // is not, is rejected by the server (below), so it never spreads to other clients.
        var outcomes: [Int: LocalOutcome] = [:]
        var failure: Error? = nil
        var localRejections: [Rejection] = []
        let faults = settings.faults
        for plan in plans where mine.contains(plan.client) && failure == nil {
            let c = plan.client
            do {
                let t0 = Date()
                let model = try buildModel(plan.spec, client: c, round: round, state: states[c]!)
                let startValues = model.parameters.trainable.values
                if faults.fails(client: c, round: round) {
                    throw PilotError.message("fault injection (faults.fail_client): client \(c)'s training failed in round \(round)")
                }
                let losses = try trainLocally(model, data: train[c]!, spec: plan.spec, seed: dataSeed(round: round, client: c))
                let trainable = model.parameters.trainable
                if faults.poisons(client: c, round: round) || ProcessInfo.processInfo.environment["PILOT_TEST_POISON_CLIENT"].flatMap(Int.init) == c {
                    trainable.pointer[0] = .nan   // fault injection: a diverged client
                }
                if faults.scaleClient == c { for i in 0..<trainable.count { trainable.pointer[i] *= Float(faults.scaleFactor) } }
                var m = rows[c]!
                m["participated"] = 1
                m["loss_total"] = losses.total; m["loss_ce"] = losses.ce; m["loss_diff"] = losses.diff
                m["loss_balance"] = losses.balance; m["loss_z"] = losses.z; m["loss_proximal"] = losses.proximal
                m["steps"] = Double(losses.steps)
                m["seconds_train"] = Date().timeIntervalSince(t0)
                rows[c] = m
                if !strategy.exchanges {
                    // no server to check it: the client itself refuses a broken model and keeps its previous state
                    do { try RoundLoop.checkFinite(model, loss: losses.total, round: round) } catch {
                        if strategy.dataParallel { throw mine.count == 1 ? error : PilotError.message("client \(c): \(error)") }
                        localRejections.append(Rejection(client: c, reason: "\(error)"))
                        continue
                    }
                }
                var o = try strategy.outcome(of: TrainedClient(round: round, client: c, model: model, start: startValues), roster: roster)
                o.update?.metrics["loss_total"] = losses.total
                if let dp = settings.dp, var u = o.update {
                    // DP: the client's change is clipped before anything leaves it
                    let reference = try o.reference ?? Self.startTensors(model, start: startValues, like: u.tensors)
                    u.tensors.values = ClientPrivacy.clip(u.tensors.values, reference: reference.values, bound: dp.clip).values
                    o.update = u
                }
                outcomes[c] = o
            } catch { failure = error }
        }
        // Everyone waits for the slowest rank here; that wait is training time, not communication.
        let failed = failure
        try RankCheck.run("training round \(round)", on: world.base, label: label) { if let failed { throw failed } }

        if world.isRoot { phaseStarted?(round, "communicate + aggregate") }
        let t1 = Date()
        federation.aggregationClock.reset()
        var serverBytes = [0.0, 0.0]
        var rejected = localRejections
        if strategy.exchanges {
            let updates = mine.compactMap { outcomes[$0]?.update }
            let state = serverState, roster = self.roster, settings = self.settings
            let exchange = try RoundExchange.run(updates, federation: federation) { all in
                let (accepted, refused) = UpdateValidation.check(all, settings: settings.robust)
                guard !accepted.isEmpty else {
                    throw PilotError.message("round \(round): every update was rejected, so nothing can be aggregated; \(round > 1 ? "round \(round - 1) stays the latest checkpoint" : "no round is committed"):\n  "
                                             + refused.map { "client \($0.client) (\(self.federation.placement.label(self.federation.placement.rank(of: $0.client)))): \($0.reason)" }.joined(separator: "\n  "))
                }
                var noised = accepted
                if let dp = settings.dp {
                    for i in noised.indices {
                        noised[i].tensors.values = ClientPrivacy.noised(noised[i].tensors.values, std: dp.noiseMultiplier * dp.clip,
                                                                        seed: UInt64(settings.seed), round: round, client: noised[i].client)
                    }
                }
                var result = try self.strategy.aggregate(round: round, updates: noised, serverState: state, roster: roster)
                result.rejected = refused
                return result
            }
            let (shared, personal) = (exchange.shared, exchange.personal)
            if let newServer = exchange.serverState { serverState = newServer }
            rejected += exchange.rejected
            let refusedClients = Set(exchange.rejected.map(\.client))
            for c in mine {
                var kept: TensorDict
                let result: ClientResult
                if let o = outcomes[c], !refusedClients.contains(c) {
                    kept = o.kept
                    result = ClientResult(shared: shared, personal: personal[c])
                    rows[c]!["bytes_sent"] = Double(4 * (o.update?.tensors.values.count ?? 0))
                    rows[c]!["bytes_received"] = Double(4 * ((shared?.values.count ?? 0) + (personal[c]?.values.count ?? 0)))
                } else {
                    // Not sampled, or rejected: it receives the shared result (the global model, the task
                    // adapters) and keeps the rest of its previous state.
                    if let o = outcomes[c] { rows[c]!["bytes_sent"] = Double(4 * (o.update?.tensors.values.count ?? 0)) }
                    guard shared != nil else { continue }
                    kept = states[c]!
                    if kept.isEmpty && strategy.appliesToStart {
                        kept = try buildModel(strategy.modelSpec(round: round, client: c, roster: roster), client: c, round: round, state: kept).trainableTensors()
                    }
                    result = ClientResult(shared: shared, personal: nil)
                }
                states[c] = try strategy.apply(round: round, client: c, kept: kept, result: result, roster: roster)
            }
        } else {
            let refusedHere = Set(localRejections.map(\.client))
            for (c, o) in outcomes where !refusedHere.contains(c) { states[c] = o.kept }
            if strategy.dataParallel {
                // one client per rank: the rank's gradient sums are the client's
                for c in mine { rows[c]!["bytes_sent"] = Double(world.bytesSent); rows[c]!["bytes_received"] = Double(world.bytesReceived) }
            }
        }
        for r in rejected where mine.contains(r.client) { rows[r.client]!["rejected"] = 1 }
        for c in mine where rows[c]!["rejected"].isNaN { rows[c]!["rejected"] = 0 }
        // every rank's local rejections (strategies without a server) reach rank 0 for the log
        let rejectionLines = try federation.world.gatherv(Array(rejected.filter { mine.contains($0.client) || federation.isServer }
            .map { "client \($0.client) (\(federation.placement.label(federation.placement.rank(of: $0.client)))): \($0.reason)" }
            .joined(separator: "\n").utf8), root: 0)
        if federation.isServer {
            var seen = Set<String>()
            for part in rejectionLines {
                for line in String(decoding: part, as: UTF8.self).split(separator: "\n") where seen.insert(String(line)).inserted {
                    report("round \(round): rejected \(line); it keeps its previous state")
                }
            }
        }
        outcomes = [:]
        let communicateSeconds = Date().timeIntervalSince(t1)
        // The server's aggregation time, which every client waited for inside the exchange.
        let aggregateSeconds = try world.broadcast(scalar: federation.aggregationClock.seconds, root: 0)
        for c in mine where rows[c]!["participated"] == 1 {
            rows[c]!["seconds_communicate"] = communicateSeconds
            rows[c]!["seconds_aggregate"] = aggregateSeconds
        }

        if world.isRoot { phaseStarted?(round, "evaluate") }
        if settings.evaluates(round: round), let codec {
            // eval.fraction samples the intermediate evaluations; the last round scores every client
            let evaluated = round == settings.rounds ? Array(0..<federation.clientCount)
                : settings.evalSampling.sample(round: round, clients: federation.clientCount, stream: 1)
            for c in evaluated where mine.contains(c) {
                let t2 = Date()
                let spec = strategy.modelSpec(round: round, client: c, roster: roster)
                let model = try buildModel(spec, client: c, round: round, state: states[c]!)
                try Self.putPersonalised(model, state: states[c]!, task: roster.clientTasks[c])
                let task = scenario.clientTasks[c]
                let metrics = try strategy.evaluate(EvaluationContext(model: model, examples: test[task]!, training: train[c]!, codec: codec, task: task,
                                                                      batchSize: min(settings.evalBatchSize, model.maxBatch),
                                                                      maxNewTokens: settings.evalMaxNewTokens))
                for (key, value) in metrics { rows[c]![key] = value }
                rows[c]!["seconds_evaluate"] = Date().timeIntervalSince(t2)
            }
        }

        // Metrics: every client's row reaches the server before the commit, and the round file keeps
        // its deterministic fields, so a row that metrics.h5 lost (a kill between the commit and the
        // metrics write, a deleted file) is rebuilt on resume.
        let width = ClientRoundMetrics.fields.count
        var clientRows = try gatherRows(mine.flatMap { rows[$0]!.values }, width: width)
        if federation.isServer {
            let received = clientRows.map { $0["bytes_sent"] }.filter { !$0.isNaN }.reduce(0, +)
            let sent = clientRows.map { $0["bytes_received"] }.filter { !$0.isNaN }.reduce(0, +)
            serverBytes = strategy.dataParallel ? [Double(world.bytesSent), Double(world.bytesReceived)] : [sent, received]
        }

        if world.isRoot { phaseStarted?(round, "checkpoint") }
        let t3 = Date()
        var meta = RoundCheckpoint.Metadata(round: round, stage: stage, algorithm: strategy.name, configText: config.effectiveFile,
                                            configHash: config.hash, seed: settings.seed)
        meta.baseHash = baseHash
        try RoundCheckpoint.write(run: runDirectory, metadata: meta, federation: federation, clientStates: states,
                                  clientSeed: { self.dataSeed(round: round, client: $0) },
                                  serverState: federation.isServer ? serverState : [:],
                                  metrics: federation.isServer ? .init(clients: clientRows, server: serverBytes) : nil,
                                  shardHash: { [hashes = shardHashes] in hashes[$0] ?? "" },
                                  at: { [faults = settings.faults] point in faults.kill(at: point, round: round) })
        let checkpointSeconds = Date().timeIntervalSince(t3)
        let perRank = try world.gatherv([checkpointSeconds], root: 0)
        if federation.isServer {
            for c in clientRows.indices { clientRows[c]["seconds_checkpoint"] = perRank[federation.placement.rank(of: c)].first ?? .nan }
            let epsilon = settings.dp.map { ClientPrivacy.epsilon($0, sampled: settings.sampling.size(of: federation.clientCount),
                                                                  clients: federation.clientCount, rounds: round) } ?? .nan
            log.append(round: round, stage: stage, clients: clientRows,
                       server: serverBytes + [aggregateSeconds, Date().timeIntervalSince(roundStart), checkpointSeconds, epsilon])
            try log.write(to: runDirectory + "/metrics.h5", attributes: metricsAttributes())
            settings.faults.kill(at: "after_metrics", round: round)
            report(RoundProgress.line(round: round, rounds: settings.rounds, stage: stage, rows: clientRows, tasks: roster.clientTasks,
                                      taskNames: taskNames, seconds: Date().timeIntervalSince(roundStart))
                   + (epsilon.isNaN ? "" : String(format: " | DP ε %.3g (δ %.0e)", epsilon, settings.dp!.delta)))
        }
        if simulateStopAfterRound == round { StopSignal.request() }
        return try world.allreduce(scalar: Int64(StopSignal.requested ? 1 : 0), op: .max) > 0
    }

    /// The values `like`'s tensors had as the round began, by name, from the trainable buffer `start`.
    static func startTensors(_ model: MLLM, start: [Float], like t: NamedTensors) throws -> NamedTensors {
        var values: [Float] = []
        values.reserveCapacity(t.values.count)
        for name in t.names {
            guard let e = model.parameters.entries.first(where: { $0.name == name && $0.trainable }) else {
                throw PilotError.message("dp.clip: the update's tensor '\(name)' is not a trainable parameter; its starting value is unknown")
            }
            values += start[e.offset..<(e.offset + e.shape.reduce(1, *))]
        }
        return try t.with(values: values)
    }

    /// Gathers every rank's rows (its clients' in client order, `width` values each) at rank 0, in client order.
    func gatherRows(_ flat: [Double], width: Int) throws -> [ClientRoundMetrics] {
        let parts = try federation.world.gatherv(flat, root: 0)
        guard federation.isServer else { return [] }
        let all = parts.flatMap { $0 }
        return stride(from: 0, to: all.count, by: width).map { ClientRoundMetrics(values: Array(all[$0..<($0 + width)])) }
    }

    /// Client `client`'s model for `round`: built from the base (the LM shared by the rank), then set
    /// up by the strategy from the client's state.
    func buildModel(_ spec: ModelSpec, client: Int, round: Int, state: TensorDict) throws -> MLLM {
        let (model, _) = try BaseCheckpoint.load(path: basePath, variant: spec.variant, options: spec.options,
                                                 trainable: spec.trainable, maxBatch: settings.batchSize,
                                                 seed: UInt64(settings.seed), optimizer: settings.optimizer,
                                                 base: lm, overrides: config.modelOverrides)
        try strategy.prepare(model: model, round: round, client: client, state: state, roster: roster)
        return model
    }

    func metricsAttributes() -> [String: H5AttributeValue] {
        ["algorithm": .string(strategy.name), "scenario": .string(scenario.scenario.rawValue),
         "client_tasks": .strings(scenario.clientTasks.map(\.rawValue)), "tasks": .strings(taskNames),
         "config": .string(config.effectiveFile), "config_sha256": .string(config.hash),
         "world_size": .int(Int64(federation.world.size))]
    }
}

extension RoundLoop {
    /// K, the scenario's clients.
    public var clientCount: Int { federation.clientCount }
}
