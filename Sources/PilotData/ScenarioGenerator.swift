import Foundation
import PilotCore

/// Dataset sizes. `tiny` is for tests (generated in well under a second), `small` is the
/// default demo, `paper` is larger.
public enum SizePreset: String, CaseIterable, Sendable {
    case tiny, small, paper

    /// Examples per client (with the random split; the Dirichlet split keeps the task's pool size).
    public var perClient: Int { switch self { case .tiny: 24; case .small: 300; case .paper: 2000 } }
    /// Examples in each task's test split.
    public var testPerTask: Int { switch self { case .tiny: 30; case .small: 300; case .paper: 1000 } }
    /// Examples in the public pretraining split (see `pretrainMix`).
    public var pretrain: Int { switch self { case .tiny: 100; case .small: 1500; case .paper: 10000 } }
}

/// How a task's training pool is divided among its clients.
public enum ClientSplit: Equatable, Sendable {
    /// A seeded shuffle cut into equal parts (the paper's setting).
    case random
    /// For each question family, client proportions drawn from a symmetric Dirichlet(alpha):
    /// small alpha gives skewed families and sizes per client.
    case dirichlet(alpha: Double)
}

public struct ScenarioConfig: Equatable, Sendable {
    public var scenario: Scenario
    public var seed: UInt64
    public var size: SizePreset
    /// Side of the square RGB images (32 for the reference model).
    public var imageSize: Int
    public var clientsPerTask: Int
    public var split: ClientSplit
    public var perClient: Int
    public var testPerTask: Int
    public var pretrainCount: Int
    /// Share of each task in the pretraining split (normalised). The default is
    /// `Scenario.defaultPretrainMix`: half captions (LLaVA's feature alignment) and half the
    /// instruction tasks that no client of the scenario owns, so that the base follows
    /// instructions but has never seen a client's task format (docs/calibration.md).
    public var pretrainMix: [FedTask: Double]
    /// Largest vocabulary the tokenizer may have (the model's vocab size).
    public var maxVocab: Int
    /// Which definition of the tasks to generate (`TaskVersion`).
    public var taskVersion: TaskVersion = .v1

    public init(scenario: Scenario, seed: UInt64 = 0, size: SizePreset = .small, imageSize: Int = 32,
                clientsPerTask: Int = 3, split: ClientSplit = .random, perClient: Int? = nil, testPerTask: Int? = nil,
                pretrainCount: Int? = nil, maxVocab: Int = 512) throws {
        guard imageSize >= 16 && imageSize <= 512 else {
            throw PilotError.invalidArgument("image size \(imageSize) is outside 16…512")
        }
        guard clientsPerTask >= 1 else { throw PilotError.invalidArgument("clients per task must be at least 1") }
        if case .dirichlet(let a) = split, !(a > 0) { throw PilotError.invalidArgument("Dirichlet alpha must be > 0, got \(a)") }
        self.scenario = scenario; self.seed = seed; self.size = size; self.imageSize = imageSize
        self.clientsPerTask = clientsPerTask; self.split = split
        self.perClient = perClient ?? size.perClient
        self.testPerTask = testPerTask ?? size.testPerTask
        self.pretrainCount = pretrainCount ?? size.pretrain
        guard self.perClient >= 1, self.testPerTask >= 1, self.pretrainCount >= FedTask.allCases.count else {
            throw PilotError.invalidArgument("sizes must be positive and the pretraining split needs at least \(FedTask.allCases.count) examples (one per task kind): per client \(self.perClient), test \(self.testPerTask), pretrain \(self.pretrainCount)")
        }
        pretrainMix = scenario.defaultPretrainMix
        self.maxVocab = maxVocab
    }
}

/// A generated scenario in memory.
public struct GeneratedScenario: Sendable {
    public var config: ScenarioConfig
    /// Client k's shard; clients 0..<P have task tasks[0], the next P tasks[1], and so on.
    public var clients: [Shard]
    /// One test split per task of the scenario.
    public var tests: [FedTask: Shard]
    /// The public pretraining split: all five tasks, disjoint from every client.
    public var pretrain: Shard
    /// Built from the pretraining split.
    public var tokenizer: Tokenizer
}

public enum ScenarioGenerator {
    public static let version = "pilot-fedmit-generator 1"

    /// Generates every split in memory. Each example has its own random stream derived from
    /// (seed, split, task, index), so one part's size does not change another part's data.
    public static func generate(_ config: ScenarioConfig) throws -> GeneratedScenario {
        let gen = TaskGenerator(imageSize: config.imageSize, version: config.taskVersion)
        var seenImages = Set<UInt64>()
        func make(_ task: FedTask, _ split: String, _ index: Int) -> Example {
            let id = "\(task.rawValue)-\(split)-\(pad(index, 6))"
            var attempt = 0
            while true {
                var rng = PilotRNG.stream(seed: config.seed, "\(config.scenario.rawValue)/\(split)/\(task.rawValue)/\(index)/\(attempt)")
                var e = gen.example(task, id: id, &rng)
                e.imageID = id + ".png"
                // Splits must be disjoint: a repeated image (vanishingly rare with the noise) is redrawn.
                if seenImages.insert(fnv64(e.image.pixels)).inserted { return e }
                attempt += 1
            }
        }
        let tasks = config.taskVersion == .v1 ? "" : " tasks=v\(config.taskVersion.rawValue)"
        let source = "\(version) seed=\(config.seed) size=\(config.size.rawValue) image=\(config.imageSize)\(tasks)"
        let seed64 = Int64(bitPattern: config.seed)

        // Pretraining split first: its images take precedence in the disjointness check.
        var pre: [Example] = []
        let mixTotal = FedTask.allCases.map { config.pretrainMix[$0] ?? 0 }.reduce(0, +)
        var counts = FedTask.allCases.map { Int((Double(config.pretrainCount) * (config.pretrainMix[$0] ?? 0) / mixTotal).rounded(.down)) }
        counts[0] += config.pretrainCount - counts.reduce(0, +)
        for (t, c) in zip(FedTask.allCases, counts) { for i in 0..<c { pre.append(make(t, "pretrain", i)) } }
        // Interleave tasks deterministically so the split reads as a mixture.
        var orderRNG = PilotRNG.stream(seed: config.seed, "pretrain-order")
        orderRNG.shuffle(&pre)
        let pretrain = Shard(metadata: ShardMetadata(split: "pretrain", task: "mixed", scenario: config.scenario.rawValue, seed: seed64, source: source), examples: pre)

        var clients: [Shard] = []
        var tests: [FedTask: Shard] = [:]
        let p = config.clientsPerTask
        for (ti, task) in config.scenario.tasks.enumerated() {
            let pool = (0..<(p * config.perClient)).map { make(task, "train", $0) }
            var rng = PilotRNG.stream(seed: config.seed, "split/\(task.rawValue)")
            let parts = divide(pool, clients: p, split: config.split, &rng)
            for (j, part) in parts.enumerated() {
                clients.append(Shard(metadata: ShardMetadata(split: "client", task: task.rawValue, client: ti * p + j,
                                                             scenario: config.scenario.rawValue, seed: seed64, source: source), examples: part))
            }
            let test = (0..<config.testPerTask).map { make(task, "test", $0) }
            tests[task] = Shard(metadata: ShardMetadata(split: "test", task: task.rawValue, scenario: config.scenario.rawValue, seed: seed64, source: source), examples: test)
        }
        var texts: [String] = []
        for e in pre { texts.append(e.instruction); texts += e.references; texts.append(e.answer) }
        let tok = try Tokenizer.build(from: texts, required: TaskGenerator.lexicon, maxSize: config.maxVocab)
        return GeneratedScenario(config: config, clients: clients, tests: tests, pretrain: pretrain, tokenizer: tok)
    }

    static func divide(_ pool: [Example], clients p: Int, split: ClientSplit, _ rng: inout PilotRNG) -> [[Example]] {
        switch split {
        case .random:
            let shuffled = rng.shuffled(pool)
            let base = shuffled.count / p, extra = shuffled.count % p
            var parts: [[Example]] = []
            var start = 0
            for j in 0..<p {
                let n = base + (j < extra ? 1 : 0)
                parts.append(Array(shuffled[start..<(start + n)]))
                start += n
            }
            return parts
        case .dirichlet(let alpha):
            var byCategory: [String: [Example]] = [:]
            for e in pool { byCategory[e.category, default: []].append(e) }
            var parts = [[Example]](repeating: [], count: p)
            for cat in byCategory.keys.sorted() {
                let items = rng.shuffled(byCategory[cat]!)
                let props = rng.dirichlet(alpha: alpha, k: p)
                var cum = 0.0, start = 0
                for j in 0..<p {
                    cum += props[j]
                    let end = j == p - 1 ? items.count : min(items.count, Int((cum * Double(items.count)).rounded()))
                    if end > start { parts[j] += items[start..<end] }
                    start = max(start, end)
                }
            }
            // No client may be empty: take one example from the largest.
            for j in 0..<p where parts[j].isEmpty {
                let big = (0..<p).max { parts[$0].count < parts[$1].count }!
                parts[j].append(parts[big].removeLast())
            }
            // Keep the pool's order inside each client (ids ascending).
            return parts.map { $0.sorted { $0.id < $1.id } }
        }
    }

    /// Writes the scenario directory:
    ///
    ///     DIR/scenario.json       manifest (config, files, counts)
    ///     DIR/tokenizer.h5        /tokenizer/tokens
    ///     DIR/pretrain.h5         public pretraining split (all tasks)
    ///     DIR/clients/client-KK.h5
    ///     DIR/test/<task>.h5
    public static func write(_ s: GeneratedScenario, to dir: String) throws {
        let fm = FileManager.default
        for sub in ["", "/clients", "/test"] {
            do { try fm.createDirectory(atPath: dir + sub, withIntermediateDirectories: true) }
            catch { throw PilotError.message("cannot create '\(dir + sub)': \(error.localizedDescription)") }
        }
        try s.tokenizer.save(path: dir + "/tokenizer.h5")
        try s.pretrain.write(to: dir + "/pretrain.h5")
        for (k, c) in s.clients.enumerated() { try c.write(to: dir + "/" + clientFile(k)) }
        for t in s.config.scenario.tasks { try s.tests[t]!.write(to: dir + "/test/\(t.rawValue).h5") }
        let data = Array(manifest(s).utf8)
        do { try Data(data).write(to: URL(fileURLWithPath: dir + "/scenario.json"), options: .atomic) }
        catch { throw PilotError.message("cannot write '\(dir)/scenario.json': \(error.localizedDescription)") }
    }

    public static func clientFile(_ k: Int) -> String { "clients/client-\(pad(k, 2)).h5" }

    /// The manifest as JSON text with a fixed key order (so files are byte-identical per seed).
    static func manifest(_ s: GeneratedScenario) -> String {
        let c = s.config
        var lines: [String] = []
        lines.append("{")
        lines.append("  \"format\": \"pilot-fedmit-scenario\",")
        lines.append("  \"format_version\": 1,")
        lines.append("  \"generator\": \(jsonString(version)),")
        lines.append("  \"scenario\": \(jsonString(c.scenario.rawValue)),")
        lines.append("  \"task_version\": \(c.taskVersion.rawValue),")
        lines.append("  \"tasks\": [\(c.scenario.tasks.map { jsonString($0.rawValue) }.joined(separator: ", "))],")
        lines.append("  \"seed\": \(c.seed),")
        lines.append("  \"size\": \(jsonString(c.size.rawValue)),")
        lines.append("  \"image_size\": \(c.imageSize),")
        switch c.split {
        case .random: lines.append("  \"split\": \"random\",")
        case .dirichlet(let a): lines.append("  \"split\": \"dirichlet\",\n  \"dirichlet_alpha\": \(a),")
        }
        lines.append("  \"tokenizer\": {\"file\": \"tokenizer.h5\", \"size\": \(s.tokenizer.count)},")
        lines.append("  \"pretrain\": {\"file\": \"pretrain.h5\", \"count\": \(s.pretrain.examples.count)},")
        lines.append("  \"clients\": [")
        for (k, sh) in s.clients.enumerated() {
            let comma = k == s.clients.count - 1 ? "" : ","
            lines.append("    {\"client\": \(k), \"task\": \(jsonString(sh.metadata.task)), \"file\": \(jsonString(clientFile(k))), \"count\": \(sh.examples.count)}\(comma)")
        }
        lines.append("  ],")
        lines.append("  \"test\": [")
        for (i, t) in c.scenario.tasks.enumerated() {
            let comma = i == c.scenario.tasks.count - 1 ? "" : ","
            lines.append("    {\"task\": \(jsonString(t.rawValue)), \"metric\": \(jsonString(t.metric.rawValue)), \"file\": \"test/\(t.rawValue).h5\", \"count\": \(s.tests[t]!.examples.count)}\(comma)")
        }
        lines.append("  ]")
        lines.append("}")
        return lines.joined(separator: "\n") + "\n"
    }
}

/// A scenario directory on disk, as the trainer sees it.
public struct ScenarioDirectory: Sendable {
    public let path: String
    public let scenario: Scenario
    public let tasks: [FedTask]
    /// Task of client k.
    public let clientTasks: [FedTask]

    public init(path: String) throws {
        let file = path + "/scenario.json"
        guard let data = FileManager.default.contents(atPath: file) else {
            throw PilotError.notFound(file: file, object: "")
        }
        guard let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let name = obj["scenario"] as? String, let clients = obj["clients"] as? [[String: Any]] else {
            throw PilotError.message("'\(file)' is not a scenario manifest (need keys scenario and clients); regenerate it with `pilot data generate` or `pilot data scenario`")
        }
        self.path = path
        // Tasks and their metrics: the manifest's "tasks" in order, each metric from its "test" entry.
        var metricOf: [String: String] = [:]
        for t in (obj["test"] as? [[String: Any]]) ?? [] {
            if let n = t["task"] as? String, let m = t["metric"] as? String { metricOf[n] = m }
        }
        do {
            if let names = obj["tasks"] as? [String], !names.isEmpty {
                let tasks = try names.map { try FedTask.named($0, metric: metricOf[$0]) }
                if let builtin = Scenario(rawValue: name), builtin.tasks == tasks { scenario = builtin }
                else { scenario = Scenario(name: name, tasks: tasks) }
            } else {
                scenario = try Scenario.parse(name)
            }
        } catch {
            throw PilotError.message("'\(file)': \(error)")
        }
        let taskList = scenario.tasks
        tasks = taskList
        let byName = Dictionary(uniqueKeysWithValues: taskList.map { ($0.rawValue, $0) })
        clientTasks = try clients.enumerated().map { k, c in
            guard let n = c["task"] as? String, let t = byName[n] else {
                throw PilotError.message("'\(file)': client \(k) has task \((c["task"] as? String).map { "'\($0)'" } ?? "none"), not one of the manifest's tasks \(taskList.map(\.rawValue))")
            }
            return t
        }
    }

    public var clientCount: Int { clientTasks.count }
    public func clientPath(_ k: Int) -> String { path + "/" + ScenarioGenerator.clientFile(k) }
    public func testPath(_ t: FedTask) -> String { path + "/test/\(t.rawValue).h5" }
    public var pretrainPath: String { path + "/pretrain.h5" }
    public var tokenizerPath: String { path + "/tokenizer.h5" }

    public func client(_ k: Int) throws -> Shard { try Shard.read(path: clientPath(k)) }
    public func test(_ t: FedTask) throws -> Shard { try Shard.read(path: testPath(t)) }
    public func pretrain() throws -> Shard { try Shard.read(path: pretrainPath) }
    public func tokenizer() throws -> Tokenizer { try Tokenizer.load(path: tokenizerPath) }
}

func pad(_ v: Int, _ width: Int) -> String {
    let s = String(v)
    return s.count >= width ? s : String(repeating: "0", count: width - s.count) + s
}

func fnv64(_ bytes: [UInt8]) -> UInt64 {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    for b in bytes { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
    return h
}

/// A JSON string literal (quotes, backslashes and control characters escaped).
func jsonString(_ s: String) -> String {
    var out = "\""
    for u in s.unicodeScalars {
        switch u {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        default:
            if u.value < 0x20 { out += "\\u" + pad16(u.value) } else { out.unicodeScalars.append(u) }
        }
    }
    return out + "\""
}

func pad16(_ v: UInt32) -> String { let s = String(v, radix: 16); return String(repeating: "0", count: 4 - s.count) + s }
