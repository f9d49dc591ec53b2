import Foundation
import PilotComm
import PilotCore
import PilotFederation
import PilotTestSupport
import Testing

/// Every strategy's pure `aggregate`, in-process on plain arrays (no communicator, no model).
///
/// Golden values: Tests/Fixtures/federation/strategy_golden.json, written by
/// scripts/make_strategy_golden.py (numpy float64, the formulas of ../shared/refs/fedopt_ref.py for
/// FedAvg/FedAdam, DESIGN §3 for Pilot); FedAvg and FedAdam are also checked against the values
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

    static func updates(_ vectors: [[Float]], samples: [Int]) -> [ClientUpdate] {
        vectors.enumerated().map { ClientUpdate(client: $0, examples: samples[$0], tensors: NamedTensors(values: $1)) }
    }

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
            let out = try s.aggregate(round: 1, updates: ups)
            #expect(out.results.count == 3)
            for r in out.results {
                #expect(r.map(\.bitPattern) == direct.map(\.bitPattern))
                #expect(Self.close(r, g.fedavg))
            }
        }
    }

    @Test("fedavg over 3 rounds matches what Flower printed")
    func fedAvgFlower() throws {
        var x = BaselineMathTests.initial
        for (r, deltas) in BaselineMathTests.rounds.enumerated() {
            let models = deltas.map { u in zip(x, u).map { $0 + $1 } }
            x = try FedAvgStrategy(learningRate: 1e-3).aggregate(round: r + 1, updates: Self.updates(models, samples: [3, 5, 2])).results[0]
            #expect(Self.close(x, BaselineMathTests.flowerFedAvg[r]), "round \(r + 1): \(x)")
        }
    }

    @Test("feddpa: the global LoRA is the uniform mean, whatever n_k")
    func fedDPA() throws {
        let out = try FedDPAStrategy(learningRate: 1e-3, supportPrompts: 4).aggregate(round: 1, updates: ups)
        for r in out.results { #expect(Self.close(r, g.feddpa_uniform)) }
    }

    @Test("fedadam: the step from the n_k-weighted update, server state threaded through 3 rounds (both forms)", arguments: [false, true])
    func fedAdam(biasCorrected: Bool) throws {
        var h = FedAdamServer.Hyper()
        h.eta = 0.05; h.beta1 = 0.9; h.beta2 = 0.99; h.tau = 1e-3; h.biasCorrected = biasCorrected
        var server = FedAdamServer(hyper: h)
        var x = g.fedadam.initial
        let golden = biasCorrected ? g.fedadam.bias_corrected : g.fedadam.paper
        let flower = biasCorrected ? BaselineMathTests.flowerFedAdam : BaselineMathTests.paperFedAdam
        for (r, deltas) in g.fedadam.rounds.enumerated() {
            let out = try FedAdamStrategy.aggregate(round: r + 1, updates: Self.updates(deltas, samples: g.samples), serverState: server)
            #expect(out.results.count == 3 && out.results.allSatisfy { $0 == out.results[0] })
            server = out.serverState
            x = zip(x, out.results[0]).map { $0 + $1 }
            #expect(Self.close(x, golden[r]), "round \(r + 1): \(x) vs \(golden[r])")
            #expect(Self.close(x, flower[r]), "round \(r + 1): \(x) vs Flower \(flower[r])")
        }
        #expect(server.t == 3)
    }

    @Test("local and centralized: nothing is aggregated, each client keeps its own vector")
    func nothingAggregated() {
        #expect(LocalStrategy(learningRate: 1e-3).aggregate(round: 1, updates: ups).results == g.clients)
        #expect(CentralizedStrategy(learningRate: 1e-3).aggregate(round: 1, updates: ups).results == g.clients)
    }

    @Test("pilot Eq. 10: n_k-weighted mean per task; T means as the server state")
    func pilotTaskMeans() throws {
        let means = try PilotStrategy.taskMeans(ups, tasks: g.tasks, numTasks: 2)
        for t in 0..<2 { #expect(Self.close(means[t], g.pilot_task_means[t]), "task \(t): \(means[t])") }
        #expect(throws: (any Error).self) { _ = try PilotStrategy.taskMeans(ups, tasks: g.tasks, numTasks: 3) }
    }

    @Test("pilot Eq. 10: the pure task means equal the task-communicator allreduce bit for bit")
    func pilotTaskMeansMatchTransport() throws {
        let tasks = [0, 1, 0, 1, 2, 2], samples = [10, 20, 30, 40, 50, 50]
        let vectors: [[Float]] = (0..<6).map { c in [Float(c) * 0.37 + 0.1, -Float(c) / 7, 1 / Float(c + 3)] }
        let pure = try PilotStrategy.taskMeans(Self.updates(vectors, samples: samples), tasks: tasks, numTasks: 3)
        let out = try InProcessCommunicator.run(size: 7) { world -> [[Float]] in
            let fed = try Federation(world: world, clientTasks: tasks, numTasks: 3, localSamples: world.rank == 0 ? 0 : samples[world.rank - 1])
            let mean = try fed.client.map { try fed.taskMean(vectors[$0], samples: samples[$0]) }
            return try fed.shareTaskMeans(mean)
        }
        for r in 0..<7 { #expect(out[r].map { $0.map(\.bitPattern) } == pure.map { $0.map(\.bitPattern) }, "rank \(r)") }
    }

    @Test("pilot ATA Eq. 11–12: top-M inverse-distance mixing (M = 1, 2) as DESIGN §3 writes it; off: the weighted mean")
    func pilotATA() throws {
        for (m, golden) in [(1, g.pilot_ata_m1), (2, g.pilot_ata_m2)] {
            var s = PilotStrategy.Settings(); s.ataM = m
            let adapters = ups
            let out = try PilotStrategy(settings: s).aggregate(round: 2, adapters: adapters, lora: ups, tasks: g.tasks, numTasks: 2)
            #expect(out.results.count == 3)
            for k in 0..<3 { #expect(Self.close(out.results[k], golden[k], tol: 1e-6), "M=\(m) client \(k): \(out.results[k])") }
            #expect(try out.serverState == PilotStrategy.taskMeans(adapters, tasks: g.tasks, numTasks: 2))
        }
        var off = PilotStrategy.Settings(); off.ata = false
        let plain = try PilotStrategy(settings: off).mixLoRA(ups, tasks: g.tasks)
        for r in plain { #expect(Self.close(r, g.fedavg)) }
    }

    @Test("named tensors: one flat buffer, names in order, renaming, and refused layouts")
    func namedTensors() throws {
        let t = try NamedTensors(names: ["g/a", "g/b"], counts: [2, 1], values: [1, 2, 3])
        #expect(try t.dictionary() == ["g/a": [1, 2], "g/b": [3]])
        #expect(try t.dictionary(renaming: "g/", to: "h/0/") == ["h/0/a": [1, 2], "h/0/b": [3]])
        #expect(try t.with(values: [4, 5, 6]).dictionary()["g/b"] == [6])
        #expect(throws: (any Error).self) { _ = try t.with(values: [1, 2]) }
        #expect(throws: (any Error).self) { _ = try NamedTensors(names: ["a"], counts: [2], values: [1]) }
        #expect(throws: (any Error).self) { _ = try NamedTensors(values: [1]).dictionary() }
    }
}
