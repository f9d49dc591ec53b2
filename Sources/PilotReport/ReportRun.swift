import Foundation
import PilotFederation
import PilotCore
import PilotHDF5

/// One run directory as `pilot report` sees it: who it is (algorithm, scenario, configuration
/// without its seed) and its per-round eval scores, from `RUN/metrics.h5`.
///
/// Only `round`, `clients/eval_score` (or `clients/eval_score_before`) and the root attributes are read, so metrics files written
/// before a field was added still report.
public struct ReportRun: Sendable, Equatable {
    /// The run directory as given on the command line.
    public let path: String
    /// The `algorithm` attribute (`pilot`, `local`, `fedavg`, …).
    public let algorithm: String
    /// The `scenario` attribute (`vu`, `gvqa`), or "?" for a file without one.
    public let scenario: String
    /// Task of every client, in client order (the `client_tasks` attribute).
    public let clientTasks: [String]
    /// `run.seed` of the effective configuration; nil when the file has no config.
    public let seed: Int?
    /// The effective configuration without `run.seed`: "section.key" → value as written in the
    /// config text. Runs with equal `settings` are seeds of one configuration.
    public let settings: [String: String]
    /// Round numbers, one per row of `scores`.
    public let rounds: [Int]
    /// [round][client] eval score; NaN where the client was not evaluated that round.
    public let scores: [[Double]]

    public init(path: String, algorithm: String, scenario: String, clientTasks: [String], seed: Int?,
                settings: [String: String], rounds: [Int], scores: [[Double]]) {
        self.path = path; self.algorithm = algorithm; self.scenario = scenario; self.clientTasks = clientTasks
        self.seed = seed; self.settings = settings; self.rounds = rounds; self.scores = scores
    }

    /// Index into `rounds` of the last round in which every client has an eval score: the round
    /// a run is scored at.
    /// The index of `round` if every client has a score there; with nil, `scoredRoundIndex`.
    public func scoredIndex(round: Int?) -> Int? {
        guard let round else { return scoredRoundIndex }
        guard let r = rounds.firstIndex(of: round), !scores[r].isEmpty, !scores[r].contains(where: \.isNaN) else { return nil }
        return r
    }

    public var scoredRoundIndex: Int? {
        scores.indices.last { r in !scores[r].isEmpty && !scores[r].contains { $0.isNaN } }
    }

    /// The configuration key whose value is the seed; it is left out of `settings`.
    public static let seedKey = "run.seed"

    /// Reads `directory/metrics.h5`: the scores after each round's aggregation (`clients/eval_score`),
    /// or with `before` those of the model each client trained (`clients/eval_score_before`, `eval.when`).
    /// Errors name the path and say what to pass instead.
    public static func load(directory: String, before: Bool = false) throws -> ReportRun {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) else {
            throw PilotError.message("run directory '\(directory)' does not exist: pass the directory that `pilot train --out` wrote")
        }
        guard isDirectory.boolValue else {
            throw PilotError.message("'\(directory)' is a file, not a run directory: pass the directory that `pilot train --out` wrote (it holds metrics.h5)")
        }
        let file = directory + "/metrics.h5"
        guard FileManager.default.fileExists(atPath: file) else {
            throw PilotError.message("'\(directory)' has no metrics.h5: it is not a run directory, or its run stopped before the first round was committed (finish it with `pilot train --resume \(directory)`)")
        }
        let f = try H5File.open(file)
        defer { f.close() }
        let scoreDataset = before ? "clients/eval_score_before" : "clients/eval_score"
        if before && !f.exists(scoreDataset) {
            throw PilotError.message("'\(file)' has no \(scoreDataset): its run scored clients after aggregation only. Scores before aggregation come from runs with eval.when = \"before\" or \"both\"; report this run without --eval before")
        }
        for required in ["round", scoreDataset] where !f.exists(required) {
            throw PilotError.notFound(file: file, object: required)
        }
        guard case let .strings(tasks)? = try f.attribute("client_tasks"), !tasks.isEmpty else {
            throw PilotError.message("'\(file)' has no client_tasks attribute, so its clients cannot be matched to tasks: was it written by `pilot train`?")
        }
        let rounds = try f.read(Int64.self, at: "round").values.map { Int($0) }
        let score = try f.read(Double.self, at: scoreDataset)
        let k = tasks.count
        guard score.shape == [rounds.count, k] else {
            throw PilotError.typeMismatch(file: file, object: scoreDataset,
                                          expected: "shape [\(rounds.count), \(k)] (rounds × client_tasks)", found: "shape \(score.shape)")
        }
        let scores = (0..<rounds.count).map { r in Array(score.values[(r * k)..<((r + 1) * k)]) }
        let configText = try f.attribute("config")?.stringValue ?? ""
        let (seed, settings) = try Self.splitSeed(configText: configText, file: file)
        return ReportRun(path: directory, algorithm: try f.attribute("algorithm")?.stringValue ?? "?",
                         scenario: try f.attribute("scenario")?.stringValue ?? "?", clientTasks: tasks,
                         seed: seed, settings: settings, rounds: rounds, scores: scores)
    }

    /// Parses an effective configuration and takes `run.seed` out of it.
    public static func splitSeed(configText: String, file: String) throws -> (seed: Int?, settings: [String: String]) {
        let config: ConfigFile
        do { config = try ConfigFile(text: configText, path: file + " (attribute config)") }
        catch { throw PilotError.message("cannot read the config attribute of '\(file)': \(error)") }
        var seed: Int?
        var settings: [String: String] = [:]
        for (key, entry) in config.entries {
            if key == seedKey, case let .int(s) = entry.value { seed = s; continue }
            settings[key] = entry.value.description
        }
        return (seed, settings)
    }
}
