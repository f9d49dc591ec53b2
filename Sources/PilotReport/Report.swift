import Foundation
import PilotFederation
import PilotCore

/// One column of the report table (the paper's layout): every client, grouped by task, then the
/// task's average; after all tasks, the average over tasks.
public enum ReportColumn: Sendable, Hashable {
    /// One client's score (index into `client_tasks`).
    case client(Int)
    /// Mean over the clients of a task.
    case taskAverage(String)
    /// Mean of the task averages: every task counts once, whatever its number of clients.
    case average
}

/// The runs of one configuration that differ only in `run.seed`: one row of the report.
public struct RunGroup: Sendable {
    /// Row label: the algorithm, plus the keys that tell it apart from other groups of the same
    /// algorithm, or the name given with `--label`.
    public let label: String
    public let algorithm: String
    /// The seeds, in the order given.
    public let runs: [ReportRun]
    /// Per run, the round it is scored at (its last round with every client evaluated).
    public let scoredRounds: [Int]
    /// [run][client] eval score of that round.
    public let finalScores: [[Double]]

    /// One number per run for a column (the task averages are taken per run, before the statistics
    /// over seeds, so the spread of an average is the spread of the runs' averages).
    public func values(_ column: ReportColumn, clientTasks: [String]) -> [Double] {
        finalScores.map { Self.value(column, scores: $0, clientTasks: clientTasks) }
    }

    public func statistic(_ column: ReportColumn, clientTasks: [String]) -> SeedStatistic {
        SeedStatistic(values(column, clientTasks: clientTasks))
    }

    static func value(_ column: ReportColumn, scores: [Double], clientTasks: [String]) -> Double {
        func taskMean(_ t: String) -> Double {
            let v = zip(clientTasks, scores).filter { $0.0 == t }.map(\.1)
            return v.reduce(0, +) / Double(max(v.count, 1))
        }
        switch column {
        case .client(let k): return scores[k]
        case .taskAverage(let t): return taskMean(t)
        case .average:
            let tasks = RunReport.taskOrder(clientTasks)
            return tasks.map(taskMean).reduce(0, +) / Double(max(tasks.count, 1))
        }
    }

    /// The plotted series of one client: at every round in which each run of the group evaluated
    /// the client, the mean over the runs.
    public func curve(client k: Int) -> [(round: Int, value: Double)] {
        let allRounds = Set(runs.flatMap(\.rounds)).sorted()
        return allRounds.compactMap { round in
            var values: [Double] = []
            for run in runs {
                guard let r = run.rounds.firstIndex(of: round), k < run.scores[r].count, !run.scores[r][k].isNaN else { return nil }
                values.append(run.scores[r][k])
            }
            return values.isEmpty ? nil : (round, values.reduce(0, +) / Double(values.count))
        }
    }

    /// "3", or "2–3" when the seeds are scored at different rounds.
    public var roundText: String {
        guard let lo = scoredRounds.min(), let hi = scoredRounds.max() else { return "" }
        return lo == hi ? "\(lo)" : "\(lo)–\(hi)"
    }
}

/// Several runs side by side: runs grouped by configuration without the seed, one scenario.
public struct RunReport: Sendable {
    /// Task of every client (equal in every run).
    public let clientTasks: [String]
    public let scenario: String
    /// Rows, in the order their first run was given.
    public let groups: [RunGroup]
    /// Things worth knowing that do not stop the report (seeds scored at different rounds, a seed
    /// given twice).
    public let warnings: [String]
    /// The round given with `--round` (nil: each run's last fully evaluated round).
    public let requestedRound: Int?

    /// Tasks in order of first appearance in `clientTasks`.
    public var tasks: [String] { Self.taskOrder(clientTasks) }

    static func taskOrder(_ clientTasks: [String]) -> [String] {
        var order: [String] = []
        for t in clientTasks where !order.contains(t) { order.append(t) }
        return order
    }

    /// Per task: its clients, then its average; then the average over tasks.
    public var columns: [ReportColumn] {
        tasks.flatMap { t in clientTasks.indices.filter { clientTasks[$0] == t }.map(ReportColumn.client) + [.taskAverage(t)] } + [.average]
    }

    /// Groups `runs` by their configuration without `run.seed`. `labels` names groups: a run's
    /// path (as given) → the label of the group it belongs to.
    /// `round`: score every run at this round (it must be evaluated for every client) instead of at
    /// its last fully evaluated round.
    public init(runs: [ReportRun], labels: [(name: String, run: String)] = [], round: Int? = nil) throws {
        guard let first = runs.first else { throw PilotError.invalidArgument("pilot report needs at least one run directory") }
        var seenPaths: [String: String] = [:]
        for run in runs {
            let key = Self.canonical(run.path)
            if let earlier = seenPaths[key] {
                throw PilotError.invalidArgument("run '\(run.path)' is given twice (also as '\(earlier)'): give each run directory once")
            }
            seenPaths[key] = run.path
            guard run.clientTasks == first.clientTasks else {
                throw PilotError.invalidArgument("""
                    runs from different scenarios cannot share one table: '\(first.path)' has clients \
                    [\(first.clientTasks.joined(separator: ", "))] (scenario \(first.scenario)) but '\(run.path)' has \
                    [\(run.clientTasks.joined(separator: ", "))] (scenario \(run.scenario)); run `pilot report` once per scenario
                    """)
            }
            if let round {
                guard run.scoredIndex(round: round) != nil else {
                    throw PilotError.message("'\(run.path)/metrics.h5' has no round \(round) in which every client was evaluated (its rounds: \(run.rounds.map(String.init).joined(separator: ", "))); choose another --round")
                }
            }
            guard run.scoredRoundIndex != nil else {
                let done = run.rounds.isEmpty ? "no round is committed yet" : "rounds \(run.rounds.map(String.init).joined(separator: ", ")) are committed"
                throw PilotError.message("""
                    '\(run.path)/metrics.h5' has no round in which every client was evaluated (\(done)): \
                    let the run finish (`pilot train --resume \(run.path)`) or leave it out of the report
                    """)
            }
        }

        // Group by configuration without the seed, in the order the runs were given.
        var members: [[ReportRun]] = []
        var keys: [[String: String]] = []
        for run in runs {
            let key = run.settings.merging(["algorithm": run.algorithm]) { a, _ in a }
            if let i = keys.firstIndex(of: key) { members[i].append(run) } else { keys.append(key); members.append([run]) }
        }

        var names = Self.automaticLabels(members.map { ($0[0].algorithm, $0[0].settings) })
        var named = [Bool](repeating: false, count: members.count)
        for (name, path) in labels {
            guard let g = members.firstIndex(where: { $0.contains { Self.canonical($0.path) == Self.canonical(path) } }) else {
                throw PilotError.invalidArgument("--label \(name)=\(path): '\(path)' is not one of the run directories given")
            }
            if named[g] && names[g] != name {
                throw PilotError.invalidArgument("--label gives the seeds of one configuration two names, '\(names[g])' and '\(name)': name each configuration once")
            }
            names[g] = name
            named[g] = true
        }
        var seenNames: Set<String> = []
        for name in names {
            guard seenNames.insert(name).inserted else {
                throw PilotError.invalidArgument("two different configurations are both labelled '\(name)': give them different --label names")
            }
        }

        var warnings: [String] = []
        groups = zip(names, members).map { label, runs in
            let rounds = runs.map { $0.rounds[$0.scoredIndex(round: round) ?? 0] }
            let scores = runs.map { $0.scores[$0.scoredIndex(round: round) ?? 0] }
            if Set(rounds).count > 1 {
                warnings.append("\(label): the seeds are scored at different rounds (" + zip(runs, rounds).map { "\($0.path): round \($1)" }.joined(separator: ", ")
                                + "); a run that stopped early can be finished with `pilot train --resume`")
            }
            for run in runs {
                // a NaN after the scored round: a broken model, not a score (the table would silently use an earlier round)
                // only at the run's final round, which evaluates every client (an earlier last round may just be a stop)
                if let scored = run.scoredRoundIndex, scored < run.rounds.count - 1, let last = run.scores.last,
                   let k = last.firstIndex(where: \.isNaN), let final = run.settings["run.rounds"].flatMap({ Int($0) }), run.rounds.last == final {
                    warnings.append("\(label): '\(run.path)' has NaN scores at its last round \(run.rounds.last!) (client \(k) first): a broken model or an unfinished evaluation; the table uses round \(run.rounds[scored]) instead")
                }
            }
            var bySeed: [Int: String] = [:]
            for run in runs {
                guard let s = run.seed else { continue }
                if let other = bySeed[s] { warnings.append("\(label): '\(other)' and '\(run.path)' have the same seed \(s); both are counted") }
                bySeed[s] = run.path
            }
            return RunGroup(label: label, algorithm: runs[0].algorithm, runs: runs, scoredRounds: rounds, finalScores: scores)
        }
        self.warnings = warnings
        requestedRound = round
        clientTasks = first.clientTasks
        scenario = first.scenario
    }

    static func canonical(_ path: String) -> String { URL(fileURLWithPath: path).standardizedFileURL.path }

    /// The algorithm name; when several configurations share an algorithm, each also lists the
    /// keys whose values differ among them (`pilot (ata=false)`). Labels that still collide get
    /// a number.
    static func automaticLabels(_ configs: [(algorithm: String, settings: [String: String])]) -> [String] {
        var labels = configs.map(\.algorithm)
        for algorithm in Set(labels) {
            let same = configs.indices.filter { configs[$0].algorithm == algorithm }
            guard same.count > 1 else { continue }
            let keys = Set(same.flatMap { configs[$0].settings.keys }).sorted()
            let differing = keys.filter { k in Set(same.map { configs[$0].settings[k] ?? "unset" }).count > 1 }
            let tails = differing.map { String($0.split(separator: ".").last ?? Substring($0)) }
            for i in same {
                let parts = differing.enumerated().map { j, key in
                    let name = tails.filter { $0 == tails[j] }.count > 1 ? key : tails[j]
                    return "\(name)=\(Self.shortValue(configs[i].settings[key] ?? "unset"))"
                }
                if !parts.isEmpty { labels[i] = "\(algorithm) (\(parts.joined(separator: ", ")))" }
            }
        }
        var seen: [String: Int] = [:]
        for i in labels.indices {
            let n = (seen[labels[i]] ?? 0) + 1
            seen[labels[i]] = n
            if n > 1 { labels[i] += " #\(n)" }
        }
        return labels
    }

    /// A config value for a label: strings without quotes, paths by their last component.
    static func shortValue(_ v: String) -> String {
        var s = v
        if s.hasPrefix("\""), s.hasSuffix("\""), s.count >= 2 { s = String(s.dropFirst().dropLast()) }
        if s.contains("/") { s = URL(fileURLWithPath: s).lastPathComponent }
        return s
    }
}
