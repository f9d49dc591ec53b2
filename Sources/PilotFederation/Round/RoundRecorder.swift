import Foundation
import PilotCore
import PilotHDF5
import PilotJob
import PilotTensor

/// Everything a round leaves behind: it gathers every client's record at the server, commits the
/// round checkpoint (each rank its own clients' files, rank 0 the round file and `latest`), appends
/// the round's row to metrics.h5 with DP's ε, and reports the committed round. Collective.
final class RoundRecorder {
    let runDirectory: String
    let federation: Federation
    let settings: RoundSettings
    let identity: RunIdentity
    let emit: (RoundEvent) -> Void
    /// metrics.h5's rows so far (rank 0).
    var log = MetricsLog()
    /// Clients excluded from training (recorded in the round file and as metrics.h5's `excluded_clients`).
    var excludedClients: [Int] = []
    /// metrics.h5's attributes: the run's, and the excluded clients when there are some.
    var metricsAttributes: [String: H5AttributeValue] {
        var a = identity.metricsAttributes
        if !excludedClients.isEmpty { a["excluded_clients"] = .ints(excludedClients.map(Int64.init)) }
        return a
    }

    var metricsPath: String { runDirectory + "/metrics.h5" }

    init(runDirectory: String, federation: Federation, settings: RoundSettings, identity: RunIdentity, emit: @escaping (RoundEvent) -> Void) {
        self.runDirectory = runDirectory; self.federation = federation; self.settings = settings
        self.identity = identity; self.emit = emit
    }

    /// Reports every rank's rejected clients once, at rank 0. Collective.
    func reportRejections(_ rejected: [Rejection], round: Int) throws {
        let placement = federation.placement, mine = federation.localClients
        let lines = try federation.world.gatherv(Array(rejected.filter { mine.contains($0.client) || federation.isServer }
            .map { "client \($0.client) (\(placement.label(placement.rank(of: $0.client)))): \($0.reason)" }
            .joined(separator: "\n").utf8), root: 0)
        guard federation.isServer else { return }
        var seen = Set<String>()
        for part in lines {
            for line in String(decoding: part, as: UTF8.self).split(separator: "\n") where seen.insert(String(line)).inserted {
                emit(.message("round \(round): rejected \(line); it keeps its previous state"))
            }
        }
    }

    /// Commits round `round`: `records` are this rank's clients', `states` their new states.
    /// The round file keeps the rows' deterministic fields, so a row that metrics.h5 lost (a kill
    /// between the commit and the metrics write, a deleted file) is rebuilt on resume.
    func commit(round: Int, stage: Int, records: [Int: ClientRoundRecord], states: [Int: NamedTensors], serverState: NamedTensors,
                aggregateSeconds: Double, started: Date, dataParallel: Bool, ata: [Int: ATAChoice] = [:]) throws {
        let world = federation.world
        let mine = federation.localClients
        var rows = try gatherRows(mine.flatMap { records[$0]!.row.values })
        var serverBytes = [0.0, 0.0]
        if federation.isServer {
            let received = rows.map { $0["bytes_sent"] }.filter { !$0.isNaN }.reduce(0, +)
            let sent = rows.map { $0["bytes_received"] }.filter { !$0.isNaN }.reduce(0, +)
            serverBytes = dataParallel ? [Double(world.bytesSent), Double(world.bytesReceived)] : [sent, received]
        }
        emit(.phase(round: round, .checkpoint))
        let t0 = Date()
        var meta = RoundCheckpoint.Metadata(round: round, stage: stage, algorithm: identity.algorithm, configText: identity.configText,
                                            configHash: identity.configHash, seed: settings.seed)
        meta.baseHash = identity.baseHash
        meta.bf16Kernel = identity.bf16Kernel
        meta.excludedClients = excludedClients
        meta.loraRanks = identity.loraRanks
        try RoundCheckpoint.write(run: runDirectory, metadata: meta, federation: federation, clientStates: states,
                                  clientSeed: { [settings] in settings.dataSeed(round: round, client: $0) },
                                  serverState: federation.isServer ? serverState : NamedTensors(),
                                  metrics: federation.isServer ? .init(clients: rows, server: serverBytes) : nil,
                                  shardHash: { [hashes = identity.shardHashes] in hashes[$0] ?? "" },
                                  at: { [faults = settings.faults] point in faults.kill(at: point, round: round) })
        let checkpointSeconds = Date().timeIntervalSince(t0)
        let perRank = try world.gatherv([checkpointSeconds], root: 0)
        guard federation.isServer else { return }
        for c in rows.indices { rows[c]["seconds_checkpoint"] = perRank[federation.placement.rank(of: c)].first ?? .nan }
        let epsilon = settings.dp.map { ClientPrivacy.epsilon($0, sampled: settings.sampling.size(of: federation.clientCount),
                                                              clients: federation.clientCount, rounds: round) } ?? .nan
        log.append(round: round, stage: stage, clients: rows,
                   server: serverBytes + [aggregateSeconds, Date().timeIntervalSince(started), checkpointSeconds, epsilon], ata: ata)
        try log.write(to: metricsPath, attributes: metricsAttributes)
        settings.faults.kill(at: "after_metrics", round: round)
        emit(.committed(CommittedRound(round: round, rounds: settings.rounds, stage: stage, rows: rows, clientTasks: federation.clientTasks,
                                       taskNames: identity.taskNames, seconds: Date().timeIntervalSince(started),
                                       epsilon: epsilon.isNaN ? nil : (epsilon, settings.dp!.delta))))
    }

    /// Gathers every rank's rows (its clients' in client order) at rank 0, in client order.
    func gatherRows(_ flat: [Double]) throws -> [ClientRoundMetrics] {
        let width = ClientRoundMetrics.fields.count
        let parts = try federation.world.gatherv(flat, root: 0)
        guard federation.isServer else { return [] }
        let all = parts.flatMap { $0 }
        return stride(from: 0, to: all.count, by: width).map { ClientRoundMetrics(values: Array(all[$0..<($0 + width)])) }
    }

    /// Rank 0, on resume after committed round `round`: metrics.h5's rows up to it, with the rows it
    /// lacks rebuilt from the round files (without the timings, which those do not store).
    func restoreLog(round: Int) throws {
        if FileManager.default.fileExists(atPath: metricsPath) {
            do {
                log = try MetricsLog.read(from: metricsPath)
            } catch {
                throw PilotError.message("\(metricsPath) cannot be read on resume: \(error)\nDelete it and --resume again: pilot rebuilds every row of metrics.h5 from the round files in \(RoundCheckpoint.directory(runDirectory)) (which keep each round's metrics; the run itself is not affected)")
            }
            log.truncate(to: round)
        } else {
            emit(.message("\(metricsPath) is missing; rebuilding its rows from the round checkpoints"))
        }
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
            try log.write(to: metricsPath, attributes: metricsAttributes)
            emit(.message("metrics.h5 had no row for round(s) \(rebuilt.map(String.init).joined(separator: ", ")); rebuilt from the round checkpoints (losses, steps, scores and bytes; the seconds are NaN)"))
        }
        if !lost.isEmpty {
            emit(.message("warning: metrics.h5 has no row for round(s) \(lost.map(String.init).joined(separator: ", ")), and those round files predate stored metrics; the rows stay missing"))
        }
    }
}

/// What identifies a run in its files: the method, the effective config and its hash, the inputs'
/// hashes, and the attributes of metrics.h5.
struct RunIdentity {
    var algorithm: String
    var configText: String
    var configHash: String
    /// SHA-256 of the base checkpoint (rank 0) and of each of this rank's clients' shards.
    var baseHash: String
    var shardHashes: [Int: String]
    var taskNames: [String]
    var metricsAttributes: [String: H5AttributeValue]
    /// What a bf16 base's products run on ("" unless the run's base is bf16).
    var bf16Kernel = ""
    /// Each client's LoRA rank when `model.lora_ranks` gives them (recorded in every round file); else empty.
    var loraRanks: [Int] = []
}
