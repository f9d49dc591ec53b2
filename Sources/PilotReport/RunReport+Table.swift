import Foundation
import PilotFederation

/// The report as a Markdown table (for people) and a tidy CSV (for pandas).
extension RunReport {
    /// Column header: `vqa c0` for client 0, `vqa avg`, `avg`.
    public func header(_ column: ReportColumn) -> String {
        switch column {
        case .client(let k): return "\(clientTasks[k]) c\(k)"
        case .taskAverage(let t): return "\(t) avg"
        case .average: return "avg"
        }
    }

    /// `12.3` for one seed, `12.3 ± 1.4` for several (×100, one decimal).
    public static func cell(_ s: SeedStatistic) -> String {
        let mean = String(format: "%.1f", s.mean * ReportUnits.scale)
        guard let std = s.std else { return mean }
        return mean + " ± " + String(format: "%.1f", std * ReportUnits.scale)
    }

    /// One row per configuration, one column per client (grouped by task) and per task average,
    /// then the footnote that says what the numbers are and which runs made each row.
    /// With more than `RoundProgress.perClientLimit` clients the table shows the task averages only
    /// (`perClient` nil), unless `perClient` asks for every client's column; the CSV always has them.
    public func markdown(perClient: Bool? = nil) -> String {
        let runCount = groups.map(\.runs.count).reduce(0, +)
        var lines = ["Eval scores, scenario \(scenario): \(groups.count) configuration\(groups.count == 1 ? "" : "s"), \(runCount) run\(runCount == 1 ? "" : "s")", ""]
        let showClients = perClient ?? (clientTasks.count <= RoundProgress.perClientLimit)
        let cols = showClients ? columns : tasks.map(ReportColumn.taskAverage) + [.average]
        if !showClients {
            lines[0] += " (\(clientTasks.count) clients: task averages only; `--per-client` for every client's column, or the CSV)"
        }
        lines.append("| method | n | round | " + cols.map(header).joined(separator: " | ") + " |")
        lines.append("|---|--:|--:|" + String(repeating: "--:|", count: cols.count))
        for g in groups {
            let cells = cols.map { Self.cell(g.statistic($0, clientTasks: clientTasks)) }
            lines.append("| \(Self.escape(g.label)) | \(g.runs.count) | \(g.roundText) | " + cells.joined(separator: " | ") + " |")
        }
        lines.append("")
        lines.append("Scores ×100: " + tasks.map { "\($0) \(ReportUnits.meaning($0))" }.joined(separator: ", ") + ". "
                     + "`c<k>` is client k; `<task> avg` is the mean over the task's clients; `avg` is the mean of the task averages (each task counts once).")
        lines.append((requestedRound.map { "Each run is scored at round \($0) (--round; column round). " }
                      ?? "Each run is scored at its last round in which every client was evaluated (column round). ")
                     + "n is the number of seeds; with n > 1 a cell is the mean ± the sample standard deviation (n−1 in the denominator) "
                     + "over the seeds' values, averages included.")
        lines.append("")
        lines += runList()
        return lines.joined(separator: "\n") + "\n"
    }

    /// The footnote's list of which runs (and seeds) made each row.
    func runList() -> [String] {
        groups.map { g in
            "- \(Self.escape(g.label)): " + g.runs.map { r in r.seed.map { "\(r.path) (seed \($0))" } ?? r.path }.joined(separator: ", ")
        }
    }

    static func escape(_ s: String) -> String { s.replacingOccurrences(of: "|", with: "\\|") }

    /// Tidy (long) form: one row per configuration and column of the table, with the unscaled
    /// score (as in metrics.h5). `client` is the client index, or `avg` for a task average and for
    /// the overall average (task `all`). `std` is empty for a single seed.
    public func csv() -> String {
        var rows = [["method", "algorithm", "task", "client", "metric", "mean", "std", "n", "seeds", "round", "runs"]]
        for g in groups {
            let seeds = g.runs.map { $0.seed.map(String.init) ?? "" }.joined(separator: ";")
            let rounds = g.scoredRounds.map(String.init).joined(separator: ";")
            let scoredRound = Set(g.scoredRounds).count == 1 ? String(g.scoredRounds[0]) : rounds
            let runs = g.runs.map(\.path).joined(separator: ";")
            for column in columns {
                let s = g.statistic(column, clientTasks: clientTasks)
                let (task, client, metric): (String, String, String)
                switch column {
                case .client(let k): (task, client, metric) = (clientTasks[k], String(k), ReportUnits.metric(clientTasks[k]))
                case .taskAverage(let t): (task, client, metric) = (t, "avg", ReportUnits.metric(t))
                case .average: (task, client, metric) = ("all", "avg", "mean_of_tasks")
                }
                rows.append([g.label, g.algorithm, task, client, metric, "\(s.mean)", s.std.map { "\($0)" } ?? "",
                             "\(s.count)", seeds, scoredRound, runs])
            }
        }
        return rows.map { $0.map(Self.csvField).joined(separator: ",") }.joined(separator: "\n") + "\n"
    }

    /// RFC 4180: quote a field holding a comma, quote or line break; double inner quotes.
    static func csvField(_ s: String) -> String {
        guard s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return s }
        return "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}
