import PilotCore
@testable import PilotFederation
import PilotJob
import PilotTensor
import Testing

/// #34 item 4: a robust rule that rejections or sampling leave with too few updates (Krum's f + 3,
/// multi-Krum's max(f + 3, m)) falls back to the coordinate-wise median for that group and round,
/// logged by task and round; a config that could never give it enough is refused before MPI starts.
@Suite("robust aggregators: fall back to the median instead of aborting")
struct RobustFallbackTests {
    static let vectors: [[Float]] = [[1, 2, 3, 4], [0.5, -1, 2, 0], [-2, 0.25, 1, 8], [3, 3, -1, 0.5]]

    static func updates(_ vectors: [[Float]]) -> [ClientUpdate] {
        vectors.enumerated().map { k, v in
            ClientUpdate(client: k, examples: k + 2, tensors: try! NamedTensors(names: ["w"], counts: [v.count], values: v), metrics: ["loss_total": 1])
        }
    }

    static func step(_ strategy: FederatedStrategy, clients: Int, tasks: [Int]? = nil) -> ServerStep {
        let tasks = tasks ?? [Int](repeating: 0, count: clients)
        return ServerStep(strategy: strategy, roster: Roster(clientTasks: tasks, clientSamples: (0..<clients).map { $0 + 2 }, numTasks: Set(tasks).count),
                          robust: .init(), dp: nil, seed: 7)
    }

    @Test("the least updates of each rule, and the rule applied to a count")
    func minimum() {
        #expect(RobustAggregator.krum(f: 0).minimumClients == 3 && RobustAggregator.krum(f: 2).minimumClients == 5)
        #expect(RobustAggregator.multiKrum(f: 0, m: 4).minimumClients == 4 && RobustAggregator.multiKrum(f: 1, m: 2).minimumClients == 4)
        #expect(RobustAggregator.median.minimumClients == 1 && RobustAggregator.trimmedMean(beta: 0.4).minimumClients == 1)
        #expect(RobustAggregator.krum(f: 0).applicable(to: 3) == .krum(f: 0))
        #expect(RobustAggregator.krum(f: 0).applicable(to: 2) == .median)
    }

    @Test("fedavg + krum f = 0, 3 clients, one rejected: the round aggregates the other two with the median and says so")
    func fedAvgKrumAfterRejection() throws {
        var v = Array(Self.vectors.prefix(3))
        v[1][0] = .nan
        let out = try Self.step(FedAvgStrategy(learningRate: 1e-3, aggregator: .krum(f: 0)), clients: 3)(round: 2, updates: Self.updates(v), serverState: [:])
        #expect(out.rejected.map(\.client) == [1])
        let median = try RobustAggregator.median.combine([v[0], v[2]], weights: [2, 4]).values
        #expect(out.shared?.values.map(\.bitPattern) == median.map(\.bitPattern))
        #expect(out.notes.count == 1)
        let note = try #require(out.notes.first)
        #expect(note.contains("round 2") && note.contains("client(s) 0, 2") && note.contains("krum with f = 0") && note.contains("median"))
    }

    @Test("enough updates: krum and multi-krum are bitwise the rule itself, with no note (fedavg and fedadam)")
    func noFallbackUnchanged() throws {
        for rule in [RobustAggregator.krum(f: 1), .multiKrum(f: 1, m: 2), .krum(f: 0)] {
            let out = try Self.step(FedAvgStrategy(learningRate: 1e-3, aggregator: rule), clients: 4)(round: 1, updates: Self.updates(Self.vectors), serverState: [:])
            let direct = try rule.combine(Self.vectors, weights: [2, 3, 4, 5]).values
            #expect(out.shared?.values.map(\.bitPattern) == direct.map(\.bitPattern), "\(rule)")
            #expect(out.notes.isEmpty)
        }
    }

    @Test("fedadam + multi-krum m = 4 with 3 updates: the pseudo-gradient is the median, noted")
    func fedAdamMultiKrum() throws {
        let strategy = FedAdamStrategy(learningRate: 1e-3, hyper: FedAdamServer.Hyper(), aggregator: .multiKrum(f: 0, m: 4))
        let ups = Array(Self.updates(Self.vectors).prefix(3))
        let out = try Self.step(strategy, clients: 3)(round: 3, updates: ups, serverState: [:])
        var server = FedAdamServer(hyper: FedAdamServer.Hyper())
        let expected = try server.update(delta: try RobustAggregator.median.combine(Array(Self.vectors.prefix(3)), weights: [2, 3, 4]).values)
        #expect(out.shared?.values.map(\.bitPattern) == expected.map(\.bitPattern))
        #expect(out.notes.first?.contains("round 3") == true && out.notes.first?.contains("multi_krum") == true)
    }

    @Test("pilot + krum f = 0, 3 clients per task, one rejected: that task's adapter is the median of its other two, named by task and round; the other task's is Krum's")
    func pilotPerTask() throws {
        let tasks = [0, 0, 0, 1, 1, 1]
        let adapters: [[Float]] = [[1, 2], [1.5, 2.5], [9, 9], [0, 1], [0.5, -1], [4, 4]]
        var ups = tasks.indices.map { k in
            ClientUpdate(client: k, examples: 2 + k,
                         tensors: try! NamedTensors(names: ["connector/task_adapters/\(tasks[k])/w", "lm/lora_a"], counts: [2, 2],
                                                    values: adapters[k] + [Float(k), 1]), metrics: ["loss_total": 1])
        }
        ups[4].metrics["loss_total"] = .nan   // rejected: task 1 keeps clients 3 and 5
        var s = PilotStrategy.Settings(); s.aggregator = .krum(f: 0)
        let out = try Self.step(PilotStrategy(settings: s), clients: 6, tasks: tasks)(round: 2, updates: ups, serverState: [:])
        #expect(out.rejected.map(\.client) == [4])
        let krum0 = try RobustAggregator.krum(f: 0).combine(Array(adapters[0..<3]), weights: [2, 3, 4]).values
        let median1 = try RobustAggregator.median.combine([adapters[3], adapters[5]], weights: [5, 7]).values
        #expect(out.serverState["connector/task_adapters/0/w"]?.map(\.bitPattern) == krum0.map(\.bitPattern))
        #expect(out.serverState["connector/task_adapters/1/w"]?.map(\.bitPattern) == median1.map(\.bitPattern))
        #expect(out.notes.count == 1)
        let note = try #require(out.notes.first)
        #expect(note.contains("round 2") && note.contains("task 1") && note.contains("client(s) 3, 5"))
    }

    // MARK: config time

    static func settings(_ run: String, _ extra: String = "") throws -> RunSettings {
        try RunSettings(RunConfig(file: ConfigFile(text: "[run]\ndata = \"d\"\nbase = \"b.h5\"\n" + run + extra, path: "/tmp/x.toml")))
    }

    @Test("fedavg + krum + run.fraction = 0.3 of 9 clients (2 sampled, krum f = 1 needs 4) is refused at config time, naming the keys")
    func sampledTooFew() throws {
        let s = try Self.settings("algorithm = \"fedavg\"\nfraction = 0.3\n", "[robust]\naggregator = \"krum\"\n")
        do {
            _ = try s.placement(clients: 9, worldSize: 10)
            Issue.record("accepted")
        } catch {
            let text = "\(error)"
            for key in ["run.fraction", "run.min_clients", "robust.aggregator", "robust.byzantine_f", "needs at least 4"] { #expect(text.contains(key), "\(key): \(text)") }
        }
        // min_clients = 4 makes it satisfiable; fraction unset too
        _ = try Self.settings("algorithm = \"fedavg\"\nfraction = 0.3\nmin_clients = 4\n", "[robust]\naggregator = \"krum\"\n").placement(clients: 9, worldSize: 10)
        _ = try Self.settings("algorithm = \"fedavg\"\n", "[robust]\naggregator = \"krum\"\n").placement(clients: 9, worldSize: 10)
    }

    @Test("pilot + krum f = 1 with 3 clients per task is refused at config time naming the smallest task; f = 0 is accepted")
    func pilotTaskTooSmall() throws {
        let tasks = ["vqa", "vqa", "vqa", "caption", "caption", "caption", "grounding", "grounding", "grounding"]
        do {
            _ = try Self.settings("", "[robust]\naggregator = \"krum\"\nbyzantine_f = 1\n").placement(clients: 9, worldSize: 10, clientTasks: tasks)
            Issue.record("accepted")
        } catch {
            let text = "\(error)"
            #expect(text.contains("task 'caption' has 3 client(s)") && text.contains("robust.byzantine_f") && text.contains("needs at least 4"), "\(text)")
        }
        _ = try Self.settings("", "[robust]\naggregator = \"krum\"\nbyzantine_f = 0\n").placement(clients: 9, worldSize: 10, clientTasks: tasks)
        // local and centralized never aggregate, so the rule is not checked for them
        _ = try Self.settings("algorithm = \"local\"\n", "[robust]\naggregator = \"krum\"\nbyzantine_f = 5\n").placement(clients: 9, worldSize: 10, clientTasks: tasks)
    }

    @Test("run.min_clients above K is refused at config time, naming the key and K (it used to be capped silently)")
    func minClientsAboveK() throws {
        do {
            _ = try Self.settings("fraction = 0.5\nmin_clients = 12\n").placement(clients: 9, worldSize: 10)
            Issue.record("accepted")
        } catch {
            #expect("\(error)".contains("run.min_clients = 12") && "\(error)".contains("9 clients"))
        }
        _ = try Self.settings("fraction = 0.5\nmin_clients = 9\n").placement(clients: 9, worldSize: 10)
    }
}
