import PilotComm
import PilotCore
import PilotData
import PilotJob
import PilotModel

/// The frozen CLIP tower's output, cached once per image and read every round (docs/models.md, "Cached
/// vision features"). Each client's cache is built by the rank that hosts it. A task's test split is
/// shared by the clients of the task, which may sit on several ranks: the rank of the task's first client
/// builds it, then, after every rank is done, the other ranks open it (and build their own copy only if
/// they cannot see a valid one, e.g. on a node with its own copy of the data). No two ranks of a run write
/// one file at once.
extension ClientInputs {
    /// Replaces the pixels of this rank's clients and test splits by their cached features. Collective.
    mutating func cacheVisionFeatures(scenario: ScenarioDirectory, placement: Placement, first: Int, world: any Communicator) throws {
        let firstClient = Dictionary(scenario.clientTasks.enumerated().map { ($0.element, $0.offset) }, uniquingKeysWith: min)
        let owned = Set(test.keys.filter { placement.rank(of: firstClient[$0]!) == world.rank })
        try RankCheck.run("caching the vision features", on: world, label: { placement.label($0) }) {
            guard let tower = lm?.visionTower else { return }
            for k in train.keys.sorted() {
                train[k] = try attach(train[k]!, shard: scenario.clientPath(k), first: 0, tower: tower, what: "client \(k)")
            }
            for t in owned.sorted(by: { $0.rawValue < $1.rawValue }) {
                test[t] = try attach(test[t]!, shard: scenario.testPath(t), first: first, tower: tower, what: "test split \(t.rawValue)")
            }
        }
        try RankCheck.run("opening the test splits' vision features", on: world, label: { placement.label($0) }) {
            guard let tower = lm?.visionTower else { return }
            for t in test.keys.filter({ !owned.contains($0) }).sorted(by: { $0.rawValue < $1.rawValue }) {
                test[t] = try attach(test[t]!, shard: scenario.testPath(t), first: first, tower: tower, what: "test split \(t.rawValue)")
            }
        }
    }

    private mutating func attach(_ examples: PreparedExamples, shard: String, first: Int, tower: FrozenVisionTower,
                                 what: String) throws -> PreparedExamples {
        let (rows, outcome) = try VisionFeatureCache.ensure(shard: shard, first: first, examples: examples, tower: tower, what: what,
                                                            progress: { Console.out($0) })
        switch outcome {
        case .reused: visionCaches.append("\(what): reused")
        case .built: visionCaches.append("\(what): built")
        case let .rebuilt(reason): visionCaches.append("\(what): rebuilt (\(reason))")
        }
        return try examples.reading(features: rows)
    }

    /// One line for rank 0 to print about the vision features of the whole run, or nil without a CLIP tower.
    /// A test split that one rank built and others opened counts once, as built. Collective (gathers every
    /// rank's `visionCaches`).
    func visionFeatureSummary(hasTower: Bool, world: any Communicator) throws -> String? {
        guard hasTower else { return nil }
        guard visionFeaturesCached else { return "vision features: computed by the CLIP tower in every round (model.cache_vision_features = false)" }
        let parts = try world.gatherv(Array(visionCaches.joined(separator: "\n").utf8), root: 0)
        guard world.rank == 0 else { return nil }
        func rank(_ outcome: Substring) -> Int { outcome.hasPrefix("rebuilt") ? 2 : outcome.hasPrefix("built") ? 1 : 0 }
        var best: [Substring: Substring] = [:]
        for part in parts {
            for line in String(decoding: part, as: UTF8.self).split(separator: "\n") {
                guard let colon = line.range(of: ": ") else { continue }
                let what = line[..<colon.lowerBound], outcome = line[colon.upperBound...]
                if best[what].map({ rank($0) < rank(outcome) }) ?? true { best[what] = outcome }
            }
        }
        let counts = (0...2).map { r in best.values.filter { rank($0) == r }.count }
        var text = "vision features: read from the cache beside each shard (\(counts[0]) reused, \(counts[1]) built, \(counts[2]) rebuilt)"
        let rebuilt = best.filter { rank($0.value) == 2 }.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }
        if !rebuilt.isEmpty { text += "; " + rebuilt.joined(separator: "; ") }
        return text
    }
}
