import Foundation
import PilotCore
import PilotHDF5

/// `RUN/metrics.h5`: per round and per client, every loss term, the eval score, bytes sent and
/// received, and seconds per phase. Rank 0 rewrites it (atomically) after every round.
///
/// Layout: `/round` int64 [R]; `/stage` int64 [R]; `/clients/<field>` float64 [R, K] for each
/// field in `ClientRoundMetrics.fields` (`participated`: 1 if the client trained that round, 0 if
/// the round's sample left it out, its losses and seconds then NaN; `rejected`: 1 if the server
/// refused its update, which left its state as it was); `/server/dp_epsilon` [R] is ε after the
/// round with `dp.*` (NaN without); `/server/<field>` float64 [R] for the server's bytes and
/// seconds; root attributes `algorithm`, `scenario`, `client_tasks` (names), `run_config`.
/// Written only when a run produces them: `/clients/eval_score_before` (and FedDPA's
/// `eval_local_weight_before`, `eval.when`) and `/ata/…` (Pilot's ATA choices, `MetricsFile+ATA.swift`).
/// In pandas: `pd.DataFrame(f["clients/eval_score"][()], index=f["round"][()])`.
public struct ClientRoundMetrics: Sendable, Equatable {
    public static let fields = ["loss_total", "loss_ce", "loss_diff", "loss_balance", "loss_z", "loss_proximal", "steps",
                                "eval_score", "eval_local_weight", "bytes_sent", "bytes_received",
                                "seconds_train", "seconds_communicate", "seconds_aggregate",
                                "seconds_evaluate", "seconds_checkpoint", "participated", "rejected",
                                "eval_score_before", "eval_local_weight_before",
                                "bytes_sent_uncompressed", "bytes_received_uncompressed"]
    /// Fields written only when some row has a value (`eval.when = "before"` or `"both"`; a run with
    /// `exchange.compress*`), so that the files of every other run keep exactly the datasets they had.
    public static let optionalFields: Set<String> = ["eval_score_before", "eval_local_weight_before",
                                                     "bytes_sent_uncompressed", "bytes_received_uncompressed"]
    public var values: [Double]
    public init(values: [Double]) { self.values = values }
    public init() { values = [Double](repeating: .nan, count: Self.fields.count) }
    public subscript(_ field: String) -> Double {
        get { values[Self.fields.firstIndex(of: field)!] }
        set { values[Self.fields.firstIndex(of: field)!] = newValue }
    }
}

public struct MetricsLog: Sendable {
    public var rounds: [Int] = []
    public var stages: [Int] = []
    /// [round][client]
    public var clients: [[ClientRoundMetrics]] = []
    /// [round] server: `serverFields`
    public var server: [[Double]] = []
    /// [round] ATA's choice per client that sent an update (empty: no ATA that round); `/ata/…`.
    public var ata: [[Int: ATAChoice]] = []
    public static let serverFields = ["bytes_sent", "bytes_received", "seconds_aggregate", "seconds_round", "seconds_checkpoint", "dp_epsilon"]

    public init() {}

    public mutating func append(round: Int, stage: Int, clients c: [ClientRoundMetrics], server s: [Double], ata a: [Int: ATAChoice] = [:]) {
        rounds.append(round); stages.append(stage); clients.append(c); server.append(s); ata.append(a)
    }

    /// Inserts a round's row in round order (a row rebuilt on resume).
    public mutating func insert(round: Int, stage: Int, clients c: [ClientRoundMetrics], server s: [Double]) {
        let at = rounds.firstIndex { $0 > round } ?? rounds.count
        rounds.insert(round, at: at); stages.insert(stage, at: at); clients.insert(c, at: at); server.insert(s, at: at)
        ata.insert([:], at: at)
    }

    /// Keeps rounds ≤ `round` (after a resume).
    public mutating func truncate(to round: Int) {
        let keep = rounds.filter { $0 <= round }.count
        rounds = Array(rounds.prefix(keep)); stages = Array(stages.prefix(keep))
        clients = Array(clients.prefix(keep)); server = Array(server.prefix(keep)); ata = Array(ata.prefix(keep))
    }

    public func write(to path: String, attributes: [String: H5AttributeValue]) throws {
        let f = try H5File.create(path)
        for (k, v) in attributes.sorted(by: { $0.key < $1.key }) { try f.setAttribute(k, v) }
        let r = rounds.count
        let k = clients.first?.count ?? 0
        try f.write(rounds.map(Int64.init), shape: [r], at: "round")
        try f.write(stages.map(Int64.init), shape: [r], at: "stage")
        for (i, field) in ClientRoundMetrics.fields.enumerated()
        where !ClientRoundMetrics.optionalFields.contains(field) || clients.contains(where: { $0.contains { !$0.values[i].isNaN } }) {
            try f.write(clients.flatMap { $0.map { $0.values[i] } }, shape: [r, k], at: "clients/" + field)
        }
        for (i, field) in Self.serverFields.enumerated() {
            try f.write(server.map { $0[i] }, shape: [r], at: "server/" + field)
        }
        try writeATA(to: f, clients: k)
        try f.commit()
    }

    public static func read(from path: String) throws -> MetricsLog {
        let f = try H5File.open(path)
        defer { f.close() }
        var log = MetricsLog()
        log.rounds = try f.read(Int64.self, at: "round").values.map { Int($0) }
        log.stages = try f.read(Int64.self, at: "stage").values.map { Int($0) }
        let r = log.rounds.count
        var columns: [[Double]?] = []
        var k = 0
        let present = Set(try f.children(of: "clients"))
        for field in ClientRoundMetrics.fields {
            // A field added after the file was written reads as NaN.
            guard present.contains(field) else { columns.append(nil); continue }
            let a = try f.read(Double.self, at: "clients/" + field)
            k = a.shape.count == 2 ? a.shape[1] : 0
            columns.append(a.values)
        }
        log.clients = (0..<r).map { ri in
            (0..<k).map { ki in ClientRoundMetrics(values: columns.map { $0?[ri * k + ki] ?? .nan }) }
        }
        // a field added after the file was written reads as NaN
        let serverColumns = try serverFields.map { f.exists("server/" + $0) ? try f.read(Double.self, at: "server/" + $0).values : [Double](repeating: .nan, count: r) }
        log.server = (0..<r).map { ri in serverColumns.map { $0[ri] } }
        log.ata = try readATA(from: f, rounds: r)
        return log
    }
}
