import Foundation
import PilotCore
import PilotData
import PilotJob
import PilotModel
import PilotTensor

/// One rank's clients and everything they need: their data, their states between rounds, and the
/// frozen base. Per round it builds each participant's model from the base and the client's state,
/// trains it, clips its change for DP, and hands back a typed record and what crosses the network;
/// after the exchange it applies the results and evaluates. The server (rank 0) hosts no client.
///
/// A rank holds one model at a time: each client's model is built, trained or evaluated, and dropped.
final class ClientHost {
    let settings: RoundSettings
    let strategy: FederatedStrategy
    let federation: Federation
    let inputs: ClientInputs
    let basePath: String
    let overrides: ModelOverrides
    /// This rank's clients' states (empty before a client's first round).
    var states: [Int: NamedTensors] = [:]
    /// Faults to inject into training (tests; the `faults.*` keys install one).
    var faults = ClientFaults()
    /// Codes what crosses the network (`exchange.compress*`); nil: Float32 values.
    var coder: ExchangeCoder?

    var mine: Range<Int> { federation.localClients }
    /// A client whose training takes this long gets its own progress line from its rank.
    static let slowClientSeconds = 20.0
    var roster: Roster { federation.roster }

    init(settings: RoundSettings, strategy: FederatedStrategy, federation: Federation, inputs: ClientInputs,
         basePath: String, overrides: ModelOverrides) {
        self.settings = settings; self.strategy = strategy; self.federation = federation; self.inputs = inputs
        self.basePath = basePath; self.overrides = overrides
        for k in federation.localClients { states[k] = NamedTensors() }
    }

    /// What this rank's participants produced in a round.
    struct Training {
        var records: [Int: ClientRoundRecord]
        var outcomes: [Int: LocalOutcome] = [:]
        /// Clients that refused their own update (strategies without a server).
        var rejections: [Rejection] = []
        var updates: [ClientUpdate] { outcomes.keys.sorted().compactMap { outcomes[$0]!.update } }
    }

    /// Trains this rank's participants one after another. A client whose training throws (a bad
    /// shard, an injected fault) is dropped for the round like a rejected update: it sends nothing
    /// and keeps its previous state, and the others go on. Centralized training, whose clients sum
    /// gradients every step, cannot lose one: there a failure on any rank is reported once, naming
    /// the rank, and every rank throws (collective). An update that is not finite, or whose loss is
    /// not, is left for the server to reject (`ServerStep`), so it never spreads.
    /// The participants in `evaluateBefore` are scored on the model they trained, before it is aggregated.
    func train(round: Int, plans: [ClientPlan], evaluateBefore: Set<Int> = []) throws -> Training {
        var out = Training(records: Dictionary(uniqueKeysWithValues: mine.map { ($0, ClientRoundRecord()) }))
        var failure: Error? = nil
        for plan in plans where mine.contains(plan.client) && failure == nil {
            do { try train(plan, round: round, into: &out, evaluate: evaluateBefore.contains(plan.client)) } catch {
                guard !strategy.dataParallel else { failure = error; continue }
                out.records[plan.client]!.participated = true
                out.outcomes[plan.client] = nil
                out.rejections.append(Rejection(client: plan.client, reason: "its training failed (\(error))"))
            }
        }
        // Everyone waits for the slowest rank here; that wait is training time, not communication.
        let failed = failure
        try RankCheck.run("training round \(round)", on: federation.world.base, label: federation.placement.label) {
            if let failed { throw failed }
        }
        return out
    }

    private func train(_ plan: ClientPlan, round: Int, into out: inout Training, evaluate: Bool) throws {
        let c = plan.client
        let t0 = Date()
        let model = try buildModel(plan.spec, client: c, round: round)
        let startValues = model.parameters.trainable.values
        try faults.beforeTraining(round, c)
        let losses = try trainLocally(model, data: inputs.train[c]!, spec: plan.spec, seed: settings.dataSeed(round: round, client: c))
        let trainable = model.parameters.trainable
        faults.afterTraining(round, c, UnsafeMutableBufferPointer(start: trainable.pointer, count: trainable.count))
        var record = out.records[c]!
        record.participated = true
        record.losses = losses
        record.examples = inputs.train[c]!.count
        record.secondsTrain = Date().timeIntervalSince(t0)
        out.records[c] = record
        if record.secondsTrain! >= Self.slowClientSeconds {
            // the round's line comes only when every client is done: at real sizes a client takes minutes
            Console.error(String(format: "round %d: client %d (rank %d) trained %d step(s) in %.0f s, loss %.4f",
                                 round, c, federation.world.base.rank, losses.steps, record.secondsTrain!, losses.total))
        }
        if !strategy.exchanges {
            // no server to check it: the client itself refuses a broken model and keeps its previous state
            do { try Self.checkFinite(model, loss: losses.total, round: round) } catch {
                if strategy.dataParallel { throw mine.count == 1 ? error : PilotError.message("client \(c): \(error)") }
                out.rejections.append(Rejection(client: c, reason: "\(error)"))
                return
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
        // Only the clipping above reads the starting values; the outcome waits for the exchange with every
        // other client of the rank, so it does not keep them (a copy of the update's size per client: 160 MB
        // for LoRA r = 16 on a 7B LM).
        o.reference = nil
        out.outcomes[c] = o
        if evaluate, inputs.codec != nil {
            // eval.when: the trained model, after its update and what it keeps were taken from it
            let t1 = Date()
            out.records[c]!.evaluationBefore = try score(model, client: c)
            out.records[c]!.secondsEvaluate = Date().timeIntervalSince(t1)
        }
    }

    /// Builds every client's new state from what it kept and what the server sent. Clients that did
    /// not train, or whose update was refused, receive the shared result (the global model, the task
    /// adapters) and keep the rest of their previous state.
    func apply(round: Int, exchange: RoundExchange.Result, to training: inout Training) throws {
        let refused = Set(exchange.rejected.map(\.client))
        for c in mine {
            let outcome = training.outcomes[c]
            if let o = outcome { training.records[c]!.bytesSent = Double(4 * (o.update?.tensors.values.count ?? 0)) }
            try coder?.clientReceived(c, sent: outcome?.update != nil, refused: refused.contains(c), exchange: exchange)
            var kept: NamedTensors
            let result: ClientResult
            if let o = outcome, !refused.contains(c) {
                kept = o.kept
                result = ClientResult(shared: exchange.shared, personal: exchange.personal[c])
                training.records[c]!.bytesReceived = Double(4 * ((exchange.shared?.values.count ?? 0) + (exchange.personal[c]?.values.count ?? 0)))
            } else {
                guard exchange.shared != nil else { continue }
                kept = states[c]!
                if kept.isEmpty && strategy.appliesToStart {
                    kept = try buildModel(strategy.modelSpec(round: round, client: c, roster: roster), client: c, round: round).trainableTensors()
                }
                result = ClientResult(shared: exchange.shared, personal: nil)
            }
            states[c] = try strategy.apply(round: round, client: c, kept: kept, result: Self.leading(result, client: c, lora: roster.lora), roster: roster)
        }
        if let coder { for c in mine { coder.recordBytes(c, into: &training.records[c]!) } }
        training.outcomes = [:]
    }

    /// Without an exchange (local, centralized): each client keeps what it trained, unless it refused it.
    func keepOwn(_ training: inout Training) {
        let refused = Set(training.rejections.map(\.client))
        for (c, o) in training.outcomes where !refused.contains(c) { states[c] = o.kept }
        training.outcomes = [:]
    }

    /// Scores this rank's clients among `clients` on their personalised models.
    func evaluate(round: Int, clients: [Int], into records: inout [Int: ClientRoundRecord]) throws {
        guard inputs.codec != nil else { return }
        for c in clients where mine.contains(c) {
            let t0 = Date()
            let spec = strategy.modelSpec(round: round, client: c, roster: roster)
            let model = try buildModel(spec, client: c, round: round)
            try Self.putPersonalised(model, state: states[c]!, task: roster.clientTasks[c])
            records[c]!.evaluation = try score(model, client: c)
            // with eval.when = "both", the seconds of both evaluations
            records[c]!.secondsEvaluate = (records[c]!.secondsEvaluate ?? 0) + Date().timeIntervalSince(t0)
        }
    }

    /// The strategy's metrics of `model` on client `c`'s test examples.
    private func score(_ model: MLLM, client c: Int) throws -> [String: Double] {
        guard let codec = inputs.codec else { return [:] }
        let task = inputs.clientTasks[c]
        let context = EvaluationContext(model: model, examples: inputs.test[task]!, training: inputs.train[c]!, codec: codec, task: task,
                                        batchSize: min(settings.evalBatchSize, model.maxBatch), maxNewTokens: settings.evalMaxNewTokens)
        return try strategy.evaluate(context)
    }

    /// Client `client`'s model for `round`: built from the base (the LM shared by the rank), then set
    /// up by the strategy from the client's state.
    func buildModel(_ spec: ModelSpec, client: Int, round: Int) throws -> MLLM {
        let (model, _) = try BaseCheckpoint.load(path: basePath, variant: spec.variant, options: spec.options,
                                                 trainable: spec.trainable, maxBatch: settings.batchSize,
                                                 seed: UInt64(settings.seed), optimizer: settings.optimizer,
                                                 base: inputs.lm, overrides: overrides.client(client), recomputeActivations: settings.recomputeActivations)
        try strategy.prepare(model: model, round: round, client: client, state: states[client]!, roster: roster)
        return model
    }

    /// HetLoRA: client `client`'s part of a result at the largest rank, its leading r_k components
    /// (the shared result is one buffer for every client); unchanged with one rank for all.
    static func leading(_ result: ClientResult, client: Int, lora: ClientLoRA?) throws -> ClientResult {
        guard let lora, !lora.isUniform else { return result }
        let r = lora.ranks[client]
        return ClientResult(shared: try result.shared.map { try HetLoRA.resized($0, rank: r) },
                            personal: try result.personal.map { try HetLoRA.resized($0, rank: r) })
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
}

/// Faults a `ClientHost` injects into its clients' training: the hook tests install (the `faults.*`
/// config keys install one for the command-line tests). The default injects nothing.
public struct ClientFaults: Sendable {
    /// Called after a client's model is built, before it trains; throwing fails its training.
    public var beforeTraining: @Sendable (_ round: Int, _ client: Int) throws -> Void = { _, _ in }
    /// Called on a client's trained values before anything leaves it (a diverged or a scaled client).
    public var afterTraining: @Sendable (_ round: Int, _ client: Int, _ trainable: UnsafeMutableBufferPointer<Float>) -> Void = { _, _, _ in }

    public init() {}

    /// The `faults.*` keys as a hook: fail_client, nan_client and scale_client.
    public init(_ f: FaultSettings) {
        beforeTraining = { round, client in
            if f.fails(client: client, round: round) {
                throw PilotError.message("fault injection (faults.fail_client): client \(client)'s training failed in round \(round)")
            }
        }
        afterTraining = { round, client, values in
            if f.poisons(client: client, round: round) { values[0] = .nan }   // a diverged client
            if f.scaleClient == client { for i in values.indices { values[i] *= Float(f.scaleFactor) } }
        }
    }
}
