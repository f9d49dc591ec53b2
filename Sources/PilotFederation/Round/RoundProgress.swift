import Foundation
import PilotJob

/// The one-line summary rank 0 prints after each round. With few clients it lists every client's
/// score; with many (more than `perClientLimit`) it summarises each task as mean [min–max] n=…,
/// and the per-client rows stay in metrics.h5 (`pilot report --per-client`).
public enum RoundProgress {
    public static let perClientLimit = 12

    public static func line(round: Int, rounds: Int, stage: Int, rows: [ClientRoundMetrics], tasks: [Int],
                            taskNames: [String], seconds: Double) -> String {
        let trained = rows.filter { $0["participated"] != 0 && $0["rejected"] != 1 }
        func mean(_ f: String, _ rs: [ClientRoundMetrics]) -> Double {
            let v = rs.map { $0[f] }.filter { !$0.isNaN }
            return v.isEmpty ? .nan : v.reduce(0, +) / Double(v.count)
        }
        let mb = rows.map { $0["bytes_sent"] + $0["bytes_received"] }.filter { !$0.isNaN }.reduce(0, +) / 1e6
        // with exchange.compress*: the Float32 size of the same tensors beside the bytes on the wire
        let raw = rows.map { $0["bytes_sent_uncompressed"] + $0["bytes_received_uncompressed"] }.filter { !$0.isNaN }
        let moved = raw.isEmpty ? String(format: "%.1f MB moved", mb)
            : String(format: "%.2f MB moved (%.2f MB uncompressed; up %.2f of %.2f MB)", mb, raw.reduce(0, +) / 1e6,
                     rows.map { $0["bytes_sent"] }.filter { !$0.isNaN }.reduce(0, +) / 1e6,
                     rows.map { $0["bytes_sent_uncompressed"] }.filter { !$0.isNaN }.reduce(0, +) / 1e6)
        let refused = rows.filter { $0["rejected"] == 1 }.count
        let took = rows.filter { $0["participated"] != 0 }.count
        let sample = (took == rows.count ? "" : " | \(took)/\(rows.count) clients") + (refused > 0 ? " | \(refused) rejected" : "")
        var line = String(format: "round %d/%d stage %d%@ | loss %.4f (ce %.4f) | train %.1fs comm %.2fs ckpt %.2fs | %@ | %.1fs",
                          round, rounds, stage, sample, mean("loss_total", trained), mean("loss_ce", trained),
                          trained.map { $0["seconds_train"] }.filter { !$0.isNaN }.max() ?? 0, mean("seconds_communicate", trained),
                          mean("seconds_checkpoint", rows), moved, seconds)
        let scores = rows.map { $0["eval_score"] }
        if rows.count <= perClientLimit {
            if !scores.contains(where: { $0.isNaN }) {
                line += " | eval " + scores.map { String(format: "%.3f", $0) }.joined(separator: " ")
            }
        } else if scores.contains(where: { !$0.isNaN }) {
            line += " | eval " + summary(scores: scores, tasks: tasks, taskNames: taskNames)
        }
        return line
    }

    /// "vqa 0.412 [0.300–0.550] n=30, caption …": per task over the clients that have a score.
    public static func summary(scores: [Double], tasks: [Int], taskNames: [String]) -> String {
        taskNames.indices.compactMap { t -> String? in
            let v = zip(scores, tasks).filter { $0.1 == t && !$0.0.isNaN }.map(\.0)
            guard !v.isEmpty else { return nil }
            return String(format: "%@ %.3f [%.3f–%.3f] n=%d", taskNames[t], v.reduce(0, +) / Double(v.count), v.min()!, v.max()!, v.count)
        }.joined(separator: ", ")
    }
}
