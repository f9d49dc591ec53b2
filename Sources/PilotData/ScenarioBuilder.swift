import Foundation
import PilotCore

/// Which test answer a multi-turn record is scored on.
public enum EvalTurn: String, CaseIterable, Sendable {
    /// The first answer (the default; LLaVA's benchmarks are single-turn).
    case first
    /// The last answer, with every earlier exchange as context.
    case last
    /// Every answer: a record of n exchanges gives n test items (`id`, `id#2`, … `id#n`).
    case all

    public static func parse(_ s: String) throws -> EvalTurn {
        guard let t = EvalTurn(rawValue: s.lowercased()) else {
            throw PilotError.invalidArgument("unknown eval turn '\(s)'; expected first, last or all")
        }
        return t
    }
}

/// The tokenizer a built scenario carries.
///
/// The shards keep the examples' text, so the same scenario serves both LMs: a run on the built-in LM
/// reads `DIR/tokenizer.h5` (word level), and a run or pretraining on an imported LM (`model.lm`,
/// `pilot pretrain --lm`) tokenizes the text with that LM's own tokenizer and chat template
/// (`ChatCodec` in PilotFederation) and ignores `tokenizer.h5`.
public enum ScenarioTokenizer: Equatable, Sendable {
    /// A word-level `Tokenizer` built from the data's own texts (every split, every turn, every
    /// reference), most frequent words first, up to `maxSize` ids.
    case wordLevel(maxSize: Int)
}

/// What `pilot data scenario` makes a scenario directory from.
public struct ScenarioBuildSpec: Sendable {
    /// One LLaVA JSON file of a task (a task may have several).
    public struct Source: Equatable, Sendable {
        public var task: String
        public var file: String
        /// The task's metric; nil: the built-in task's, or exact_match for a new name.
        public var metric: MetricKind?
        public init(task: String, file: String, metric: MetricKind? = nil) { self.task = task; self.file = file; self.metric = metric }
    }

    public var tasks: [Source]
    /// Test splits given as files (`--test NAME=FILE`); a task without one gets `testFraction` of its records.
    public var tests: [Source] = []
    /// Public pretraining files; without any, `pretrainFraction` of every task's records is carved off.
    public var pretrain: [String] = []
    public var images: String
    public var clientsPerTask = 3
    /// JSON object {"record id": "client name"}: data already split by owner.
    public var clientsFile: String?
    public var split: ClientSplit = .random
    public var testFraction = 0.2
    public var pretrainFraction = 0.1
    public var seed: UInt64 = 0
    /// The manifest's scenario name.
    public var name = "custom"
    public var importOptions = LLaVAJSON.ImportOptions()
    public var evalTurn: EvalTurn = .first
    public var tokenizer: ScenarioTokenizer = .wordLevel(maxSize: 512)

    public init(tasks: [Source], images: String) { self.tasks = tasks; self.images = images }
}

/// A scenario built from the user's LLaVA data, in memory.
public struct BuiltScenario: Sendable {
    public var spec: ScenarioBuildSpec
    public var tasks: [FedTask]
    public var clients: [Shard]
    /// Client names (from `--clients`, or `<task>-<j>`).
    public var clientNames: [String]
    public var tests: [FedTask: Shard]
    public var pretrain: Shard
    /// "carved" (from the tasks' records) or "given" (`--pretrain`).
    public var pretrainSource: String
    public var tokenizer: Tokenizer
    /// Every file's import report, in the order read.
    public var reports: [(task: String, file: String, report: LLaVAJSON.ImportReport)]
    /// Image format of every example id.
    public var formatOf: [String: String]
    /// Words the vocabulary limit left out (mapped to <unk>), with their counts.
    public var droppedWords: [String: Int]
    /// Per split, the number of examples that do not fit the layout whole.
    public var tooLong: [String: Int]
    /// Images of the given pretraining split that a client or test record also uses.
    public var pretrainImageOverlap: Int

    /// The summary table: per client and per task, records, rejected, images by format, mean turns, answer length.
    public var summary: String {
        var rows: [[String]] = [["split", "task", "records", "rejected", "jpeg", "png", "none", "turns", "answer words"]]
        func row(_ split: String, _ task: String, _ ex: [Example], rejected: String) -> [String] {
            let f = ex.map { formatOf[$0.id.components(separatedBy: "#").first!] ?? "png" }
            let turns = ex.isEmpty ? 0 : Double(ex.map(\.turnCount).reduce(0, +)) / Double(ex.count)
            let answers = ex.flatMap { $0.exchanges.map(\.gpt) }
            let words = answers.isEmpty ? 0 : Double(answers.map { $0.split(whereSeparator: { $0.isWhitespace }).count }.reduce(0, +)) / Double(answers.count)
            return [split, task, String(ex.count), rejected, String(f.filter { $0 == "jpeg" }.count), String(f.filter { $0 == "png" }.count),
                    String(f.filter { $0 == "none" }.count), String(format: "%.2f", turns), String(format: "%.2f", words)]
        }
        for (k, c) in clients.enumerated() { rows.append(row("client \(k) \(clientNames[k])", c.metadata.task, c.examples, rejected: "")) }
        for t in tasks { rows.append(row("test", t.rawValue, tests[t]!.examples, rejected: "")) }
        rows.append(row("pretrain (\(pretrainSource))", "mixed", pretrain.examples, rejected: ""))
        for t in tasks {
            let reps = reports.filter { $0.task == t.rawValue }.map(\.report)
            let total = reps.map(\.total).reduce(0, +), bad = reps.map(\.problems.count).reduce(0, +)
            rows.append(["all files", t.rawValue, String(total), String(bad), "", "", "", "", ""])
        }
        let given = reports.filter { $0.task == "pretrain" }.map(\.report)
        if !given.isEmpty {
            rows.append(["all files", "pretrain", String(given.map(\.total).reduce(0, +)), String(given.map(\.problems.count).reduce(0, +)), "", "", "", "", ""])
        }
        let widths = (0..<rows[0].count).map { c in rows.map { $0[c].count }.max()! }
        return rows.map { r in r.enumerated().map { c, v in c < 2 ? v.padding(toLength: widths[c], withPad: " ", startingAt: 0)
                                                       : String(repeating: " ", count: widths[c] - v.count) + v }.joined(separator: "  ") }
            .joined(separator: "\n")
    }
}

/// Builds a scenario directory from LLaVA JSON files: validated records, client shards, a test split
/// per task, a public pretraining split disjoint from both, and a tokenizer of the data's own words.
/// The same inputs and seed give the same files.
public enum ScenarioBuilder {
    public static let version = "pilot-data-scenario 1"

    public static func build(_ spec: ScenarioBuildSpec, progress: (String) -> Void = { _ in }) throws -> BuiltScenario {
        guard !spec.tasks.isEmpty else { throw PilotError.invalidArgument("no task given: pass --task NAME=FILE.json[:METRIC] at least once") }
        guard spec.clientsPerTask >= 1 else { throw PilotError.invalidArgument("--clients-per-task must be at least 1") }
        guard (0..<1).contains(spec.testFraction), (0..<1).contains(spec.pretrainFraction), spec.testFraction + spec.pretrainFraction < 1 else {
            throw PilotError.invalidArgument("--test-fraction and --pretrain-fraction must be in [0, 1) and sum to less than 1")
        }
        // Tasks in order of first appearance, each with one metric.
        var taskNames: [String] = []
        var metricOf: [String: MetricKind] = [:]
        for s in spec.tasks {
            if !taskNames.contains(s.task) { taskNames.append(s.task) }
            if let m = s.metric {
                if let prev = metricOf[s.task], prev != m {
                    throw PilotError.invalidArgument("task '\(s.task)' is given two metrics, \(prev.rawValue) and \(m.rawValue)")
                }
                metricOf[s.task] = m
            }
        }
        guard !taskNames.contains("pretrain") else {
            throw PilotError.invalidArgument("'pretrain' names the pretraining split; give the task another name (or pass the file as --pretrain)")
        }
        let tasks = try taskNames.map { n in try FedTask(name: n, metric: metricOf[n] ?? FedTask(rawValue: n)?.metric ?? .exactMatch) }
        let taskByName = Dictionary(uniqueKeysWithValues: tasks.map { ($0.rawValue, $0) })
        for t in spec.tests where taskByName[t.task] == nil {
            throw PilotError.invalidArgument("--test \(t.task)=\(t.file): no --task is named '\(t.task)' (tasks: \(taskNames.joined(separator: ", ")))")
        }

        var importer = try RecordImporter(images: spec.images, options: spec.importOptions)
        var reports: [(task: String, file: String, report: LLaVAJSON.ImportReport)] = []
        var formatOf: [String: String] = [:]
        func load(_ task: FedTask, _ file: String) throws -> [Example] {
            let t0 = Date()
            var r = LLaVAJSON.ImportReport()
            try importer.importFile(json: file, task: task, into: &r)
            for (e, f) in zip(r.examples, r.imageFormats) { formatOf[e.id] = f }
            reports.append((task.rawValue, file, r))
            progress(String(format: "read %@ (%@): %d records, %d kept, %d rejected, %.1f s", file, task.rawValue, r.total, r.valid,
                            r.problems.count, Date().timeIntervalSince(t0)))
            return r.examples
        }
        var pools: [String: [Example]] = [:]
        var givenTests: [String: [Example]] = [:]
        for s in spec.tasks { pools[s.task, default: []] += try load(taskByName[s.task]!, s.file) }
        for s in spec.tests { givenTests[s.task, default: []] += try load(taskByName[s.task]!, s.file) }
        let pretrainTask = try FedTask(name: "pretrain", metric: .exactMatch)
        var givenPretrain: [Example] = []
        for f in spec.pretrain { givenPretrain += try load(pretrainTask, f) }

        func rejectedText(_ task: String) -> String {
            reports.filter { $0.task == task }.map { "\($0.file):\n" + $0.report.text }.joined(separator: "\n")
        }
        for t in taskNames where (pools[t] ?? []).isEmpty {
            throw PilotError.message("task '\(t)' has no valid record (files: \(spec.tasks.filter { $0.task == t }.map(\.file).joined(separator: ", "))); fix the records below or drop the task\n" + rejectedText(t))
        }
        if !spec.pretrain.isEmpty && givenPretrain.isEmpty {
            throw PilotError.message("the pretraining files \(spec.pretrain.joined(separator: ", ")) have no valid record\n" + rejectedText("pretrain"))
        }

        // Test and pretraining records are carved by image, so that no image is in two splits of a task.
        func carve(_ pool: [Example], fraction: Double, label: String) -> (taken: [Example], rest: [Example]) {
            guard fraction > 0, !pool.isEmpty else { return ([], pool) }
            var groups: [String: [Int]] = [:]
            var order: [String] = []
            for (i, e) in pool.enumerated() {
                let key = e.isTextOnly ? "id:" + e.id : "image:" + e.imageID
                if groups[key] == nil { order.append(key) }
                groups[key, default: []].append(i)
            }
            var rng = PilotRNG.stream(seed: spec.seed, label)
            let shuffled = rng.shuffled(order)
            let want = max(1, Int((Double(pool.count) * fraction).rounded()))
            var taken = Set<Int>()
            for key in shuffled where taken.count < want { taken.formUnion(groups[key]!) }
            return (pool.indices.filter { taken.contains($0) }.map { pool[$0] }, pool.indices.filter { !taken.contains($0) }.map { pool[$0] })
        }
        var trainPools: [String: [Example]] = [:]
        var tests: [FedTask: [Example]] = [:]
        var carvedPretrain: [Example] = []
        for t in tasks {
            var pool = pools[t.rawValue]!
            if let given = givenTests[t.rawValue] {
                tests[t] = given
            } else {
                guard spec.testFraction > 0 else {
                    throw PilotError.invalidArgument("task '\(t.rawValue)' has no test split: pass --test \(t.rawValue)=FILE.json or a --test-fraction above 0")
                }
                let (taken, rest) = carve(pool, fraction: spec.testFraction, label: "scenario/test/\(t.rawValue)")
                tests[t] = taken; pool = rest
            }
            if spec.pretrain.isEmpty {
                let (taken, rest) = carve(pool, fraction: spec.pretrainFraction, label: "scenario/pretrain/\(t.rawValue)")
                carvedPretrain += taken; pool = rest
            }
            trainPools[t.rawValue] = pool
        }
        if spec.pretrain.isEmpty && carvedPretrain.isEmpty {
            throw PilotError.invalidArgument("no pretraining split: pass --pretrain FILE.json or a --pretrain-fraction above 0")
        }

        // Clients: by owner (--clients) or split per task.
        var clients: [Shard] = []
        var clientNames: [String] = []
        let owners = try spec.clientsFile.map(readOwners)
        let seed64 = Int64(bitPattern: spec.seed)
        let source = "\(version) seed=\(spec.seed) image=\(spec.importOptions.imageSize) mode=\(spec.importOptions.imageMode.rawValue)"
        func meta(_ split: String, _ task: String, client: Int = -1) -> ShardMetadata {
            ShardMetadata(split: split, task: task, client: client, scenario: spec.name, seed: seed64, source: source)
        }
        var ownerTask: [String: String] = [:]
        for t in tasks {
            let pool = trainPools[t.rawValue]!
            var parts: [(String, [Example])] = []
            if let owners {
                var byOwner: [String: [Example]] = [:]
                var missing: [String] = []
                for e in pool {
                    guard let o = owners[e.id] else { missing.append(e.id); continue }
                    byOwner[o, default: []].append(e)
                }
                guard missing.isEmpty else {
                    throw PilotError.message("--clients \(spec.clientsFile!): \(missing.count) training record(s) of task '\(t.rawValue)' have no client: \(missing.prefix(5).joined(separator: ", "))\(missing.count > 5 ? ", …" : ""); map every record id to a client name")
                }
                for o in byOwner.keys.sorted() {
                    if let other = ownerTask[o], other != t.rawValue {
                        throw PilotError.message("--clients \(spec.clientsFile!): client '\(o)' has records of tasks '\(other)' and '\(t.rawValue)'; a client holds one task, so give it one name per task")
                    }
                    ownerTask[o] = t.rawValue
                    parts.append((o, byOwner[o]!))
                }
            } else {
                guard pool.count >= spec.clientsPerTask else {
                    throw PilotError.message("task '\(t.rawValue)' has \(pool.count) training record(s) after the test and pretraining splits, fewer than its \(spec.clientsPerTask) clients; lower --clients-per-task or add records")
                }
                var rng = PilotRNG.stream(seed: spec.seed, "split/\(t.rawValue)")
                let divided = ScenarioGenerator.divide(pool, clients: spec.clientsPerTask, split: spec.split, &rng)
                parts = divided.enumerated().map { ("\(t.rawValue)-\($0.offset)", $0.element) }
            }
            for (name, examples) in parts {
                clients.append(Shard(metadata: meta("client", t.rawValue, client: clients.count), examples: examples))
                clientNames.append(name)
            }
        }

        // Test items for the chosen turn.
        var testShards: [FedTask: Shard] = [:]
        for t in tasks {
            var items: [Example] = []
            for e in tests[t]! {
                let n = e.exchanges.count
                switch spec.evalTurn {
                case .first: items.append(e)
                case .last:
                    var x = e
                    if n > 1 { x.evalTurn = n - 1; x.references = [e.exchanges[n - 1].gpt] }
                    items.append(x)
                case .all:
                    for k in 0..<n {
                        var x = e
                        if k > 0 { x.id = "\(e.id)#\(k + 1)"; x.evalTurn = k; x.references = [e.exchanges[k].gpt] }
                        items.append(x)
                    }
                }
            }
            guard !items.isEmpty else { throw PilotError.message("task '\(t.rawValue)': the test split is empty") }
            testShards[t] = Shard(metadata: meta("test", t.rawValue), examples: items)
        }
        let pretrainExamples = spec.pretrain.isEmpty ? carvedPretrain : givenPretrain
        let pretrain = Shard(metadata: meta("pretrain", "mixed"), examples: pretrainExamples)
        var overlap = 0
        if !spec.pretrain.isEmpty {
            let used = Set((clients.flatMap(\.examples) + testShards.values.flatMap(\.examples)).filter { !$0.isTextOnly }.map(\.imageID))
            overlap = Set(givenPretrain.filter { !$0.isTextOnly }.map(\.imageID)).intersection(used).count
        }

        // The tokenizer: the data's own words.
        let all = clients.flatMap(\.examples) + tasks.flatMap { testShards[$0]!.examples } + pretrainExamples
        var texts: [String] = []
        for e in all { for x in e.exchanges { texts.append(x.human); texts.append(x.gpt) }; texts += e.references }
        let tokenizer: Tokenizer
        switch spec.tokenizer {
        case .wordLevel(let maxSize):
            let boxes = tasks.contains { $0.metric == .accAtIoU50 }
            tokenizer = try Tokenizer.build(from: texts, maxSize: maxSize, closedSet: boxes ? Tokenizer.closedSet : Tokenizer.closedSetWithoutCoordinates)
        }
        var dropped: [String: Int] = [:]
        for text in texts { for p in tokenizer.unknownPieces(text) { dropped[p, default: 0] += 1 } }
        var tooLong: [String: Int] = [:]
        let layout = spec.importOptions.layout
        func countLong(_ split: String, _ ex: [Example]) {
            for e in ex {
                let n = e.exchanges.map { tokenizer.encode($0.human).count + tokenizer.encode($0.gpt).count + 2 }.reduce(1, +)
                if n > layout.textLength { tooLong[split, default: 0] += 1 }
            }
        }
        countLong("clients", clients.flatMap(\.examples))
        countLong("test", tasks.flatMap { testShards[$0]!.examples })
        countLong("pretrain", pretrainExamples)
        return BuiltScenario(spec: spec, tasks: tasks, clients: clients, clientNames: clientNames, tests: testShards, pretrain: pretrain,
                             pretrainSource: spec.pretrain.isEmpty ? "carved" : "given", tokenizer: tokenizer, reports: reports,
                             formatOf: formatOf, droppedWords: dropped, tooLong: tooLong, pretrainImageOverlap: overlap)
    }

    /// `{"record id": "client name", …}` from a JSON file.
    static func readOwners(_ path: String) throws -> [String: String] {
        guard let data = FileManager.default.contents(atPath: path) else { throw PilotError.notFound(file: path, object: "") }
        guard let obj = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw PilotError.message("--clients '\(path)': expected a JSON object {\"record id\": \"client name\", …}")
        }
        var out: [String: String] = [:]
        for (id, v) in obj {
            guard let name = v as? String, !name.isEmpty else {
                throw PilotError.message("--clients '\(path)': record '\(id)' maps to \(v), not a client name (a non-empty string)")
            }
            out[id] = name
        }
        return out
    }
}
