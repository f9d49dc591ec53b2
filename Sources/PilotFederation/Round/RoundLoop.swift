import Foundation
import PilotComm
import PilotCore
import PilotData
import PilotJob
import PilotModel
import PilotTensor

/// The one round loop that every strategy runs in, in three roles (as Flower's `fit_round`):
///
///  - `ClientHost`, on every client rank: builds, trains and clips its clients' models, then
///    applies the round's results and evaluates;
///  - `ServerStep`, pure, on rank 0 inside the exchange: validates, adds DP noise, aggregates;
///  - `RoundRecorder`: gathers the records, commits the checkpoint and metrics.h5, reports.
///
/// Per round: configure → train → exchange (server step) → apply → evaluate → commit → stop if a
/// signal asked. `RoundLoop+Setup.swift` builds the three roles from the config.
public final class RoundLoop {
    public enum Outcome: Equatable, Sendable { case finished(rounds: Int), stopped(afterRound: Int) }

    public let config: RunConfig
    public let settings: RoundSettings
    public let runDirectory: String
    let federation: Federation
    let strategy: FederatedStrategy
    let scenario: ScenarioDirectory
    let basePath: String
    let host: ClientHost
    let server: ServerStep
    let recorder: RoundRecorder
    let emit: (RoundEvent) -> Void
    /// The server's state (rank 0): FedAdam's moments, Pilot's task adapters.
    var serverState = NamedTensors()
    /// Secure aggregation or its fixed-point reference (`[secure]`); nil: the float averaging.
    var secure: SecureRound?

    /// Test hook: behave as if a stop signal arrived during this round.
    public var simulateStopAfterRound: Int?
    /// Clients that train no more (`pilot train --resume RUN --exclude-client K`): from the next round
    /// on they are left out of every sample, like clients not sampled (they still receive the shared
    /// result and are evaluated). A resume keeps the run's earlier exclusions and adds these.
    public var excludedClients: Set<Int> = []
    /// Faults this rank injects into its clients' training (tests; `faults.*` installs one).
    public var clientFaults: ClientFaults {
        get { host.faults }
        set { host.faults = newValue }
    }
    /// K, the scenario's clients.
    public var clientCount: Int { federation.clientCount }

    init(config: RunConfig, settings: RoundSettings, runDirectory: String, federation: Federation, strategy: FederatedStrategy,
         scenario: ScenarioDirectory, basePath: String, host: ClientHost, server: ServerStep, recorder: RoundRecorder,
         emit: @escaping (RoundEvent) -> Void) {
        self.config = config; self.settings = settings; self.runDirectory = runDirectory; self.federation = federation
        self.strategy = strategy; self.scenario = scenario; self.basePath = basePath
        self.host = host; self.server = server; self.recorder = recorder; self.emit = emit
    }

    /// Runs rounds after the last committed one (0 for a new run) until R, or until a stop signal.
    public func run(resume: Bool) throws -> Outcome {
        let world = federation.world
        var start = 0
        if resume, let last = try RoundCheckpoint.latestRound(run: runDirectory) {
            start = last
            try restore(round: last)
        }
        if let bad = excludedClients.first(where: { $0 < 0 || $0 >= federation.clientCount }) {
            throw PilotError.invalidArgument("--exclude-client \(bad): the run has clients 0...\(federation.clientCount - 1)")
        }
        if !excludedClients.isEmpty {
            emit(.message("clients left out of training from round \(start + 1) on: \(excludedClients.sorted().map(String.init).joined(separator: ", "))"))
        }
        recorder.excludedClients = excludedClients.sorted()
        let rounds = settings.rounds
        if start >= rounds {
            emit(.message("run already complete (\(rounds) rounds); nothing to do"))
            return .finished(rounds: rounds)
        }
        // A commit killed before its rename leaves its temporary file; nothing is writing yet, so rank 0
        // removes them before any rank writes (the barrier) and says so.
        if world.isRoot {
            let removed = RoundCheckpoint.removeStaleTemporaries(run: runDirectory)
            if !removed.isEmpty {
                emit(.message("removed \(removed.count) temporary file(s) that an interrupted commit left in \(RoundCheckpoint.directory(runDirectory)): \(removed.prefix(4).joined(separator: ", "))\(removed.count > 4 ? ", …" : "")"))
            }
        }
        try world.barrier()
        for round in (start + 1)...rounds {
            if try runRound(round) && round < rounds {
                StopSignal.settle(StopSignal.exitCode)
                emit(.message("stop requested by \(StopSignal.signalName): round \(round) is committed; every rank exits \(StopSignal.exitCode); resume with `pilot train --resume \(runDirectory)`"))
                return .stopped(afterRound: round)
            }
        }
        StopSignal.settle(0)
        return .finished(rounds: rounds)
    }

    /// One round, collective; returns whether a stop was requested.
    func runRound(_ round: Int) throws -> Bool {
        let world = federation.world, started = Date()
        StopSignal.setRoundInProgress(round)
        world.resetCounts()
        emit(.phase(round: round, .train))
        settings.faults.stall(round: round, rank: world.rank)
        let plans = strategy.configure(round: round, federation: federation).filter { !excludedClients.contains($0.client) }
        // eval.fraction samples the intermediate evaluations; the last round scores every client
        let evaluated = !settings.evaluates(round: round) ? []
            : round == settings.rounds ? Array(0..<federation.clientCount)
            : settings.evalSampling.sample(round: round, clients: federation.clientCount, stream: 1)
        // eval.when = "before"/"both": each evaluated participant is scored on the model it just trained
        var training = try host.train(round: round, plans: plans, evaluateBefore: settings.evalWhen.scoresBefore ? Set(evaluated) : [])

        emit(.phase(round: round, .communicate))
        let t0 = Date()
        federation.aggregationClock.reset()
        var rejected = training.rejections
        var notes: [String] = []
        var ata: [Int: ATAChoice] = [:]
        if strategy.exchanges {
            var updates = training.updates
            if let secure {
                let prepared = try secure.prepare(round: round, training: &training)
                updates = prepared.updates
                rejected = training.rejections
                if prepared.clipped > 0 { notes.append(SecureRound.clippedNote(round: round, count: prepared.clipped)) }
            }
            // the clients that dropped out are named before the server aggregates without them
            try recorder.reportRejections(training.rejections, round: round)
            let exchange = try RoundExchange.run(updates, federation: federation, coder: host.coder) { [server, serverState, secure] updates in
                if let secure { return try secure.server(round: round, updates: updates, serverState: serverState) }
                let result = try server(round: round, updates: updates, serverState: serverState)
                ata = result.ata   // rank 0: ATA's choices, for metrics.h5
                return result
            }
            if let state = exchange.serverState { serverState = state }
            rejected += exchange.rejected
            notes += exchange.notes
            try host.apply(round: round, exchange: exchange, to: &training)
            try recorder.reportRejections(exchange.rejected, round: round)
        } else {
            host.keepOwn(&training)
            if strategy.dataParallel {
                // one client per rank: the rank's gradient sums are the client's
                for c in host.mine { training.records[c]!.bytesSent = Double(world.bytesSent); training.records[c]!.bytesReceived = Double(world.bytesReceived) }
            }
            try recorder.reportRejections(rejected, round: round)
        }
        for r in rejected where host.mine.contains(r.client) { training.records[r.client]!.rejected = true }
        for note in notes { emit(.message(note)) }
        let communicateSeconds = Date().timeIntervalSince(t0)
        // The server's aggregation time, which every client waited for inside the exchange.
        let aggregateSeconds = try world.broadcast(scalar: federation.aggregationClock.seconds, root: 0)
        for c in host.mine where training.records[c]!.participated {
            training.records[c]!.secondsCommunicate = communicateSeconds
            training.records[c]!.secondsAggregate = aggregateSeconds
        }

        emit(.phase(round: round, .evaluate))
        if !evaluated.isEmpty && settings.evalWhen.scoresAfter {
            try host.evaluate(round: round, clients: evaluated, into: &training.records)
        }

        try recorder.commit(round: round, stage: plans.first?.spec.stage ?? 0, records: training.records,
                            states: try host.coder?.withClientState(host.states) ?? host.states,
                            serverState: try host.coder?.withServerState(serverState) ?? serverState, aggregateSeconds: aggregateSeconds, started: started,
                            dataParallel: strategy.dataParallel, ata: ata)
        if simulateStopAfterRound == round { StopSignal.request() }
        return try world.allreduce(scalar: Int64(StopSignal.requested ? 1 : 0), op: .max) > 0
    }
}
