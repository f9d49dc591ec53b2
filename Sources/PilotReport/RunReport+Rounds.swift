import Foundation
import PilotFederation

/// The report along the rounds (`pilot report --by-round`, `--plot-average`): a task average or the
/// average of the task averages at every round, mean ± std over the seeds.
extension RunGroup {
    /// At every round in which each run of the group evaluated every client that `column` needs
    /// (all clients for `.average`, the task's for `.taskAverage`), the statistic over the runs of
    /// their per-run values (as in the table: averages are taken per run, then over seeds).
    public func curve(_ column: ReportColumn, clientTasks: [String]) -> [(round: Int, statistic: SeedStatistic)] {
        let needed: [Int]
        switch column {
        case .client(let k): needed = [k]
        case .taskAverage(let t): needed = clientTasks.indices.filter { clientTasks[$0] == t }
        case .average: needed = Array(clientTasks.indices)
        }
        let allRounds = Set(runs.flatMap(\.rounds)).sorted()
        return allRounds.compactMap { round in
            var values: [Double] = []
            for run in runs {
                guard let r = run.rounds.firstIndex(of: round),
                      needed.allSatisfy({ $0 < run.scores[r].count && !run.scores[r][$0].isNaN }) else { return nil }
                values.append(RunGroup.value(column, scores: run.scores[r], clientTasks: clientTasks))
            }
            return values.isEmpty ? nil : (round, SeedStatistic(values))
        }
    }
}

extension RunReport {
    /// The columns of the per-round views: every task's average, then the average over tasks.
    public var averageColumns: [ReportColumn] { tasks.map(ReportColumn.taskAverage) + [.average] }

    /// Rounds at which some group has a value of `column`.
    func roundsWithValues(_ column: ReportColumn) -> [Int] {
        Set(groups.flatMap { $0.curve(column, clientTasks: clientTasks).map(\.round) }).sorted()
    }

    /// One table per column of `averageColumns` (the overall average first): one row per
    /// configuration, one column per round, each cell the mean ± std over the seeds (×100).
    /// An empty cell: not every seed evaluated every client needed at that round.
    public func roundsMarkdown() -> String {
        let runCount = groups.map(\.runs.count).reduce(0, +)
        var lines = ["Eval scores by round, scenario \(scenario): \(groups.count) configuration\(groups.count == 1 ? "" : "s"), \(runCount) run\(runCount == 1 ? "" : "s")", ""]
        for column in [ReportColumn.average] + tasks.map(ReportColumn.taskAverage) {
            let rounds = roundsWithValues(column)
            lines.append("**\(header(column))**" + (column == .average ? " (mean of the task averages)" : " (\(ReportUnits.meaning(taskOf(column))))"))
            lines.append("")
            lines.append("| method | n | " + rounds.map { "r\($0)" }.joined(separator: " | ") + " |")
            lines.append("|---|--:|" + String(repeating: "--:|", count: rounds.count))
            for g in groups {
                let curve = Dictionary(uniqueKeysWithValues: g.curve(column, clientTasks: clientTasks).map { ($0.round, $0.statistic) })
                let cells = rounds.map { curve[$0].map(Self.cell) ?? "" }
                lines.append("| \(Self.escape(g.label)) | \(g.runs.count) | " + cells.joined(separator: " | ") + " |")
            }
            lines.append("")
        }
        lines.append("Scores ×100: " + tasks.map { "\($0) \(ReportUnits.meaning($0))" }.joined(separator: ", ") + ". "
                     + "`rN` is round N; n is the number of seeds; with n > 1 a cell is the mean ± the sample standard deviation "
                     + "(n−1 in the denominator) over the seeds' values, each seed's averages taken first. "
                     + "A cell is empty where some seed did not evaluate every client at that round.")
        lines.append("")
        lines += runList()
        return lines.joined(separator: "\n") + "\n"
    }

    /// Tidy form of `roundsMarkdown`: one row per configuration, column and round, unscaled.
    public func roundsCSV() -> String {
        var rows = [["method", "algorithm", "task", "metric", "round", "mean", "std", "n", "seeds", "runs"]]
        for g in groups {
            let seeds = g.runs.map { $0.seed.map(String.init) ?? "" }.joined(separator: ";")
            let runs = g.runs.map(\.path).joined(separator: ";")
            for column in averageColumns {
                let task = taskOf(column)
                let metric = column == .average ? "mean_of_tasks" : ReportUnits.metric(task)
                for (round, s) in g.curve(column, clientTasks: clientTasks) {
                    rows.append([g.label, g.algorithm, task, metric, String(round), "\(s.mean)", s.std.map { "\($0)" } ?? "",
                                 "\(s.count)", seeds, runs])
                }
            }
        }
        return rows.map { $0.map(Self.csvField).joined(separator: ",") }.joined(separator: "\n") + "\n"
    }

    /// The task of a per-round column; `all` for the overall average.
    func taskOf(_ column: ReportColumn) -> String {
        switch column {
        case .client(let k): return clientTasks[k]
        case .taskAverage(let t): return t
        case .average: return "all"
        }
    }
}
