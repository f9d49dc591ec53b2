import Foundation
import PilotFederation
import PilotCore

/// The per-client results table of a run (the paper's layout: one column per client, grouped by
/// task, plus the per-task average), from its metrics.h5.
public enum ResultsTable {
    public static func render(run: String) throws -> String {
        let log = try MetricsLog.read(from: run + "/metrics.h5")
        let f = try PilotHDF5Bridge.attributes(run + "/metrics.h5")
        let tasks = f.clientTasks
        guard let last = log.clients.indices.last(where: { r in !log.clients[r].contains { $0["eval_score"].isNaN } }) else {
            return "no evaluated round yet in \(run)/metrics.h5"
        }
        let scores = log.clients[last].map { $0["eval_score"] }
        var lines = ["", "Results after round \(log.rounds[last]) (\(f.algorithm), \(run)):", ""]
        // the run's final round evaluates every client; a NaN there is a broken model (an earlier last round may be a stop)
        if last < log.clients.count - 1, let k = log.clients.last?.firstIndex(where: { $0["eval_score"].isNaN }),
           let final = try? RunSettings(RunConfig(effectiveFile: f.config, path: run + "/metrics.h5")).run.rounds, log.rounds.last == final {
            lines.insert("warning: round \(log.rounds.last!) has a NaN score (client \(k) first): a broken model or an unfinished evaluation; these are round \(log.rounds[last])'s", at: 1)
        }
        var order: [String] = []
        for t in tasks where !order.contains(t) { order.append(t) }
        if scores.count <= RoundProgress.perClientLimit {
            lines.append("| client | task | score |")
            lines.append("|---|---|---|")
            for (k, s) in scores.enumerated() { lines.append(String(format: "| %d | %@ | %.4f |", k, tasks[k], s)) }
            lines.append("")
            lines.append("| task | mean over its clients |")
            lines.append("|---|---|")
            for t in order {
                let v = zip(tasks, scores).filter { $0.0 == t }.map(\.1)
                lines.append(String(format: "| %@ | %.4f |", t, v.reduce(0, +) / Double(v.count)))
            }
        } else {
            // many clients: per task; every client's score is in metrics.h5 (`pilot report --per-client`)
            lines.append("| task | clients | mean | min | max |")
            lines.append("|---|--:|--:|--:|--:|")
            for t in order {
                let v = zip(tasks, scores).filter { $0.0 == t }.map(\.1)
                lines.append(String(format: "| %@ | %d | %.4f | %.4f | %.4f |", t, v.count, v.reduce(0, +) / Double(v.count), v.min()!, v.max()!))
            }
            lines.append("")
            lines.append("(\(scores.count) clients; every client's score: `pilot report --per-client \(run)` or \(run)/metrics.h5 clients/eval_score)")
        }
        return lines.joined(separator: "\n")
    }
}

import PilotHDF5
import PilotJob

enum PilotHDF5Bridge {
    struct Attributes { let algorithm: String; let clientTasks: [String]; let config: String }
    static func attributes(_ path: String) throws -> Attributes {
        let f = try H5File.open(path)
        defer { f.close() }
        var tasks: [String] = []
        if case let .strings(t)? = try f.attribute("client_tasks") { tasks = t }
        return Attributes(algorithm: try f.attribute("algorithm")?.stringValue ?? "?", clientTasks: tasks,
                          config: try f.attribute("config")?.stringValue ?? "")
    }
}
