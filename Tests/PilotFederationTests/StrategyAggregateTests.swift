import Foundation
import PilotComm
import PilotCore
import PilotFederation
import PilotJob
import PilotTensor
import PilotTestSupport
import Testing

/// Every strategy's pure `aggregate`, in-process on plain arrays (no communicator, no model).
///
/// Golden values: Tests/Fixtures/federation/strategy_golden.json, written by
/// Tests/Fixtures/federation/make_strategy_golden.py (numpy float64, the formulas of ../shared/refs/fedopt_ref.py for
/// FedAvg/FedAdam, docs/design.md §3 for Pilot); FedAvg and FedAdam are also checked against the values
/// Flower 1.41 itself printed (BaselineMathTests).
@Suite("strategy aggregate (pure)")
struct StrategyAggregateTests {
    struct Golden: Decodable {
        struct FedAdam: Decodable {
            var initial: [Float]
            var rounds: [[[Float]]]
            var bias_corrected: [[Double]]
            var paper: [[Double]]
        }
        var clients: [[Float]]
        var samples: [Int]
        var tasks: [Int]
        var fedavg: [Double]
        var feddpa_uniform: [Double]
        var fedadam: FedAdam
        var pilot_task_means: [[Double]]
        var pilot_ata_m1: [[Double]]
        var pilot_ata_m2: [[Double]]
    }

    static let golden: Golden = {
        let url = URL(fileURLWithPath: repositoryRoot + "/Tests/Fixtures/federation/strategy_golden.json")
        return try! JSONDecoder().decode(Golden.self, from: Data(contentsOf: url))
    }()

    /// One update per client, one tensor "w" (client order).
    static func updates(_ vectors: [[Float]], samples: [Int], name: String = "w") -> [ClientUpdate] {
        vectors.enumerated().map { ClientUpdate(client: $0, examples: samples[$0], tensors: try! NamedTensors(names: [name], counts: [$1.count], values: $1)) }
    }

    /// Pilot's updates: a task adapter in its task's slot, then a LoRA tensor.
    static func pilotUpdates(adapters: [[Float]], lora: [[Float]], samples: [Int], tasks: [Int], clients: [Int]? = nil) -> [ClientUpdate] {
        (clients ?? Array(adapters.indices)).map { k in
            ClientUpdate(client: k, examples: samples[k],
                         tensors: try! NamedTensors(names: ["connector/task_adapters/\(tasks[k])/w", "lm/lora_a"],
                                                    counts: [adapters[k].count, lora[k].count], values: adapters[k] + lora[k]))
        }
    }

    var roster: Roster { Roster(clientTasks: g.tasks, clientSamples: g.samples, numTasks: 2) }

    static func close(_ a: [Float], _ b: [Double], tol: Double = 2e-6) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { abs(Double($0) - $1) <= tol * max(1, abs($1)) }
    }

    var g: Golden { Self.golden }
    var ups: [ClientUpdate] { Self.updates(g.clients, samples: g.samples) }

    @Test("fedavg, fedprox and shepherd: every client gets the n_k-weighted mean (Flower's FedAvg), bit-equal to Aggregate.weightedMean")
    func averaging() throws {
        let direct = try Aggregate.weightedMean(g.clients, weights: g.samples.map(Double.init))
        let strategies: [AveragingStrategy] = [FedAvgStrategy(learningRate: 1e-3), FedProxStrategy(learningRate: 1e-3, mu: 0.01),
                                               ShepherdStrategy(learningRate: 1e-3)]
        for s in strategies {
            let out = try s.aggregate(round: 1, updates: ups, serverState: [:], roster: roster)
            #expect(out.personal.isEmpty && out.serverState.isEmpty)
            let shared = try #require(out.shared)
            #expect(shared.names == ["w"])
            #expect(shared.values.map(\.bitPattern) == direct.map(\.bitPattern))
            #expect(Self.close(shared.values, g.fedavg))
        }
        // clients that sent different tensors are refused, naming the client
        var bad = ups
        bad[1].tensors = try NamedTensors(names: ["v"], counts: [bad[1].tensors.values.count], values: bad[1].tensors.values)
        #expect(throws: PilotError.self) { _ = try FedAvgStrategy(learningRate: 1e-3).aggregate(round: 1, updates: bad, serverState: [:], roster: roster) }
    }

    @Test("fedavg over 3 rounds matches what Flower printed")
    func fedAvgFlower() throws {
        var x = BaselineMathTests.initial
        let r3 = Roster(clientTasks: [0, 0, 0], clientSamples: [3, 5, 2], numTasks: 1)
        for (r, deltas) in BaselineMathTests.rounds.enumerated() {
            let models = deltas.map { u in zip(x, u).map { $0 + $1 } }
            x = try FedAvgStrategy(learningRate: 1e-3).aggregate(round: r + 1, updates: Self.updates(models, samples: [3, 5, 2]), serverState: [:], roster: r3).shared!.values
            #expect(Self.close(x, BaselineMathTests.flowerFedAvg[r]), "round \(r + 1): \(x)")
        }
    }

    @Test("feddpa: the global LoRA is the uniform mean, whatever n_k")
    func fedDPA() throws {
        let out = try FedDPAStrategy(learningRate: 1e-3, supportPrompts: 4).aggregate(round: 1, updates: ups, serverState: [:], roster: roster)
        #expect(Self.close(try #require(out.shared).values, g.feddpa_uniform))
    }

    @Test("fedadam: the step from the n_k-weighted update, server state threaded through 3 rounds (both forms); apply: x ← x + u", arguments: [false, true])
    func fedAdam(biasCorrected: Bool) throws {
        var h = FedAdamServer.Hyper()
        h.eta = 0.05; h.beta1 = 0.9; h.beta2 = 0.99; h.tau = 1e-3; h.biasCorrected = biasCorrected
        let strategy = FedAdamStrategy(learningRate: 1e-3, hyper: h)
        var server = NamedTensors()
        var x = g.fedadam.initial
        let golden = biasCorrected ? g.fedadam.bias_corrected : g.fedadam.paper
        let flower = biasCorrected ? BaselineMathTests.flowerFedAdam : BaselineMathTests.paperFedAdam
        for (r, deltas) in g.fedadam.rounds.enumerated() {
            let out = try strategy.aggregate(round: r + 1, updates: Self.updates(deltas, samples: g.samples), serverState: server, roster: roster)
            #expect(out.personal.isEmpty)
            server = out.serverState
            x = try strategy.apply(round: r + 1, client: 0, kept: ["w": x], result: ClientResult(shared: out.shared), roster: roster)["w"].map(Array.init)!
            #expect(Self.close(x, golden[r]), "round \(r + 1): \(x) vs \(golden[r])")
            #expect(Self.close(x, flower[r]), "round \(r + 1): \(x) vs Flower \(flower[r])")
        }
        #expect(server["t"] == [3])
        #expect(server.shape(of: "m") == [g.fedadam.initial.count])
    }

    @Test("local and centralized: nothing crosses the network and nothing is aggregated")
    func nothingAggregated() throws {
        for s in [LocalStrategy(learningRate: 1e-3), CentralizedStrategy(learningRate: 1e-3)] as [any FederatedStrategy] {
            #expect(!s.exchanges)
            #expect(try s.aggregate(round: 1, updates: ups, serverState: [:], roster: roster) == RoundResult())
        }
        #expect(CentralizedStrategy(learningRate: 1e-3).dataParallel)
    }

    @Test("pilot Eq. 10: n_k-weighted mean per task; a task without clients has none")
    func pilotTaskMeans() throws {
        let adapters = ups.map { ($0.client, $0.examples, $0.tensors.values) }
        let means = try PilotStrategy.taskMeans(adapters, tasks: g.tasks, numTasks: 2)
        for t in 0..<2 { #expect(Self.close(try #require(means[t]), g.pilot_task_means[t]), "task \(t)") }
        #expect(try PilotStrategy.taskMeans(adapters, tasks: g.tasks, numTasks: 3)[2] == nil)
    }

    @Test("pilot ATA Eq. 11–12: top-M inverse-distance mixing (M = 1, 2) as docs/design.md §3 writes it; off: the weighted mean")
    func pilotATA() throws {
        for (m, golden) in [(1, g.pilot_ata_m1), (2, g.pilot_ata_m2)] {
            var s = PilotStrategy.Settings(); s.ataM = m
            let updates = Self.pilotUpdates(adapters: g.clients, lora: g.clients, samples: g.samples, tasks: g.tasks)
            let out = try PilotStrategy(settings: s).aggregate(round: 2, updates: updates, serverState: [:], roster: roster)
            #expect(out.personal.count == 3)
            for k in 0..<3 {
                let p = try #require(out.personal[k])
                #expect(p.names == ["lm/lora_a"])
                #expect(Self.close(p.values, golden[k], tol: 1e-6), "M=\(m) client \(k): \(p.values)")
            }
            // shared: both task adapters, named for their slots; the server keeps them
            let shared = try #require(out.shared)
            for t in 0..<2 {
                #expect(Self.close(Array(try #require(shared["connector/task_adapters/\(t)/w"])), g.pilot_task_means[t]))
                #expect(shared.shape(of: "connector/task_adapters/\(t)/w") == [g.clients[0].count])
            }
            #expect(out.serverState == shared)
        }
        var off = PilotStrategy.Settings(); off.ata = false
        let plain = try PilotStrategy(settings: off).mixLoRA(ups, tasks: g.tasks)
        for r in plain { #expect(Self.close(r, g.fedavg)) }
    }

    @Test("pilot over a sample: a task with no participant keeps its adapter of the last round; ATA mixes the participants only")
    func pilotSampled() throws {
        let updates = Self.pilotUpdates(adapters: g.clients, lora: g.clients, samples: g.samples, tasks: g.tasks)
        let strategy = PilotStrategy(settings: .init())
        let full = try strategy.aggregate(round: 2, updates: updates, serverState: [:], roster: roster)
        // only the clients of task 0 take part in the next round
        let task0 = updates.filter { g.tasks[$0.client] == 0 }.map { u -> ClientUpdate in
            var v = u; v.tensors.values = v.tensors.values.map { $0 * 2 }; return v
        }
        let next = try strategy.aggregate(round: 3, updates: task0, serverState: full.serverState, roster: roster)
        #expect(Set(next.personal.keys) == Set(task0.map(\.client)))
        let shared = try #require(next.shared)
        #expect(shared["connector/task_adapters/1/w"] == full.serverState["connector/task_adapters/1/w"])
        #expect(shared["connector/task_adapters/0/w"] != full.serverState["connector/task_adapters/0/w"])
        // a server state from a round file of format_version 1 (each task's adapter flat, as task_adapters/<t>) gives the same round
        var legacy = NamedTensors()
        for t in 0..<2 { try legacy.append("task_adapters/\(t)", shape: [g.clients[0].count], values: full.serverState["connector/task_adapters/\(t)/w"]!) }
        #expect(try strategy.aggregate(round: 3, updates: task0, serverState: legacy, roster: roster) == next)
        // round 1 with no client of task 1: no adapter for it yet
        let first = try strategy.aggregate(round: 1, updates: task0, serverState: [:], roster: roster)
        #expect(try #require(first.shared)["connector/task_adapters/1/w"] == nil)
    }

    @Test("named tensors: one flat buffer with shapes, names in order, merging, renaming, and refused layouts")
    func namedTensors() throws {
        let t = try NamedTensors(names: ["g/a", "g/b"], shapes: [[2, 1], [1]], values: [1, 2, 3])
        #expect(t["g/a"] == [1, 2] && t["g/b"] == [3] && t["g/c"] == nil)
        #expect(t.shape(of: "g/a") == [2, 1] && t.counts == [2, 1] && t.offsets == [0, 2])
        let renamed = try t.renamed { "h/0/" + $0.dropFirst(2) }
        #expect(renamed.names == ["h/0/a", "h/0/b"] && renamed.shapes == t.shapes && renamed.values == t.values)
        #expect(try t.with(values: [4, 5, 6])["g/b"] == [6])
        // merging: same names replaced (with the new shape), new ones appended, order kept
        let merged = try t.merging(try NamedTensors(names: ["g/c", "g/a"], shapes: [[1], [2]], values: [9, 7, 8]))
        #expect(merged.names == ["g/a", "g/b", "g/c"] && merged.values == [7, 8, 3, 9] && merged.shape(of: "g/a") == [2])
        #expect(t.filter { $0 != "g/a" } == ["g/b": [3]])
        #expect(throws: (any Error).self) { _ = try t.with(values: [1, 2]) }
        #expect(throws: (any Error).self) { _ = try NamedTensors(names: ["a"], counts: [2], values: [1]) }
        #expect(throws: (any Error).self) { _ = try NamedTensors(names: ["a", "a"], counts: [1, 1], values: [1, 2]) }
        #expect(throws: (any Error).self) { _ = try t.renamed { _ in "same" } }
        #expect(throws: (any Error).self) { _ = try t.merging(NamedTensors(values: [1])) }
        #expect(t.firstNonFinite() == nil)
        #expect(try t.with(values: [1, 2, .nan]).firstNonFinite()?.name == "g/b")
    }
}
