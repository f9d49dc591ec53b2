import Foundation
import PilotCore
@testable import PilotFederation
import PilotHDF5
import PilotJob
import PilotTensor
import PilotTestSupport
import Testing

/// Issue #37's instrumentation, in-process: ATA's recorded choices are the ones its mixing used,
/// metrics.h5 keeps them (and the scores before aggregation) and reads them back, and the new
/// keys decode or are refused at config time.
@Suite("instrumentation: ATA's choices, eval.when, pilot.psi_s_init")
struct InstrumentationTests {
    /// 5 clients of 2 tasks, LoRA vectors of 3 values, hand-picked so that the distances differ.
    static let lora: [[Float]] = [[0, 0, 0], [1, 0, 0], [0, 3, 0], [0, 0, 0.5], [2, 2, 2]]
    static let samples = [4, 2, 3, 5, 1]
    static let tasks = [0, 0, 1, 1, 0]

    static func updates(clients: [Int]) -> [ClientUpdate] {
        StrategyAggregateTests.pilotUpdates(adapters: lora.map { _ in [1, 2] }, lora: lora, samples: samples, tasks: tasks, clients: clients)
    }

    @Test("the recorded neighbours and weights are ATA's: nearest first, the mixing matrix's rows, and the mixed LoRA is Σ weight·LoRA")
    func ataChoices() throws {
        let roster = Roster(clientTasks: Self.tasks, clientSamples: Self.samples, numTasks: 2)
        for (m, selection) in [(2, ATASelection.topM), (6, .topM), (2, .sameTask), (2, .allClients)] {
            var s = PilotStrategy.Settings(); s.ataM = m; s.ataSelection = selection
            // client 3 sent no update this round: it is neither chosen nor recorded
            let clients = [0, 1, 2, 4]
            let out = try PilotStrategy(settings: s).aggregate(round: 2, updates: Self.updates(clients: clients), serverState: [:], roster: roster)
            #expect(out.ata.keys.sorted() == clients)
            let k = clients.count, vectors = clients.map { Self.lora[$0] }
            let d = Aggregate.pairwiseDistances(Aggregate.rows(vectors, length: 3), clients: k, length: 3)
            let matrix = try Aggregate.ataMixingMatrix(distances: d, samples: clients.map { Self.samples[$0] }, tasks: clients.map { Self.tasks[$0] },
                                                       selection: selection, m: min(m, k - 1), normalisation: .normalised)
            for (i, c) in clients.enumerated() {
                let choice = try #require(out.ata[c])
                #expect(!choice.neighbours.contains(c) && !choice.neighbours.contains(3))
                let expected = selection == .topM ? min(m, k - 1) : selection == .allClients ? k - 1 : clients.filter { $0 != c && Self.tasks[$0] == Self.tasks[c] }.count
                #expect(choice.neighbours.count == expected, "\(selection) M=\(m) client \(c): \(choice.neighbours)")
                #expect(choice.distances == choice.distances.sorted(), "nearest first")
                #expect(choice.selfWeight == matrix[i][i])
                for (j, n) in choice.neighbours.enumerated() {
                    let col = clients.firstIndex(of: n)!
                    #expect(choice.weights[j] == matrix[i][col] && choice.distances[j] == d[i * k + col])
                }
                // every nonzero entry of the row is a recorded neighbour (or the client itself)
                let nonzero = Set(matrix[i].indices.filter { matrix[i][$0] != 0 }.map { clients[$0] })
                #expect(nonzero.isSubset(of: Set(choice.neighbours + [c])))
                #expect(abs(choice.selfWeight + choice.weights.reduce(0, +) - 1) < 1e-12)
                // the client's mixed LoRA, from the record alone
                var mixed = Self.lora[c].map { Double($0) * choice.selfWeight }
                for (n, w) in zip(choice.neighbours, choice.weights) { for q in 0..<3 { mixed[q] += w * Double(Self.lora[n][q]) } }
                let got = try #require(out.personal[c]).values
                #expect(zip(got, mixed).allSatisfy { abs(Double($0) - $1) < 1e-6 }, "client \(c): \(got) vs \(mixed)")
            }
        }
        var off = PilotStrategy.Settings(); off.ata = false
        #expect(try PilotStrategy(settings: off).aggregate(round: 2, updates: Self.updates(clients: [0, 1, 2]), serverState: [:], roster: roster).ata.isEmpty)
    }

    @Test("metrics.h5: /ata/… shaped [R, K, M] with -1/NaN where a client sent nothing, scores before aggregation, both read back; neither written when unused")
    func metricsFile() throws {
        let dir = TemporaryDirectory(); defer { dir.cleanup() }
        var log = MetricsLog()
        var row = (0..<3).map { _ in ClientRoundMetrics() }
        row[0]["eval_score"] = 0.5
        log.append(round: 1, stage: 1, clients: row, server: [Double](repeating: 0, count: MetricsLog.serverFields.count))
        // a file without ATA and without scores before aggregation has exactly the datasets it had before
        try log.write(to: dir.file("plain.h5"), attributes: [:])
        let plain = try H5File.open(dir.file("plain.h5"))
        #expect(!plain.exists("ata") && !plain.exists("clients/eval_score_before") && !plain.exists("clients/eval_local_weight_before"))
        #expect(try plain.children(of: "clients").sorted() == ClientRoundMetrics.fields.filter { !ClientRoundMetrics.optionalFields.contains($0) }.sorted())
        plain.close()

        row[1]["eval_score_before"] = 0.25
        log.append(round: 2, stage: 2, clients: row, server: log.server[0],
                   ata: [0: ATAChoice(neighbours: [2, 1], weights: [0.3, 0.2], distances: [1, 2], selfWeight: 0.5),
                         2: ATAChoice(neighbours: [0], weights: [0.4], distances: [1], selfWeight: 0.6)])
        try log.write(to: dir.file("m.h5"), attributes: [:])
        let f = try H5File.open(dir.file("m.h5"))
        let n = try f.read(Int64.self, at: "ata/neighbours")
        #expect(n.shape == [2, 3, 2])
        #expect(n.values == [-1, -1, -1, -1, -1, -1, /* round 2 */ 2, 1, -1, -1, 0, -1])
        let w = try f.read(Double.self, at: "ata/weights").values
        #expect(w[6] == 0.3 && w[7] == 0.2 && w[10] == 0.4 && w[11].isNaN && w[0].isNaN)
        #expect(try f.read(Double.self, at: "ata/self_weight").values.enumerated().allSatisfy { i, v in
            i == 3 ? v == 0.5 : i == 5 ? v == 0.6 : v.isNaN })
        #expect(try f.read(Double.self, at: "clients/eval_score_before").values[4] == 0.25)
        #expect(try f.attribute("dims", at: "ata/neighbours") == .strings(["round", "client", "neighbour"]))
        f.close()
        let back = try MetricsLog.read(from: dir.file("m.h5"))
        #expect(back.ata == log.ata && back.clients[1][1]["eval_score_before"] == 0.25 && back.clients[0][1]["eval_score_before"].isNaN)
        var cut = back; cut.truncate(to: 1)
        #expect(cut.ata.count == 1 && cut.ata[0].isEmpty)
    }

    @Test("eval.when and pilot.psi_s_init decode (unset: after, copy; out of the effective config), and misuse is refused naming the key")
    func keys() throws {
        let plain = try RunSettings(RunSettingsTests.config())
        #expect(plain.eval.when == nil && RoundSettings(plain).evalWhen == .after && plain.pilot.psiSInit == nil)
        let effective = try RunSettingsTests.config().effectiveFile
        #expect(!effective.contains("when") && !effective.contains("psi_s"))
        let both = try RunSettings(RunSettingsTests.config("[eval]\nwhen = \"both\"\n[pilot]\npsi_s_init = \"perturbed\"\npsi_s_noise = 0.05\n"))
        #expect(RoundSettings(both).evalWhen == .both)
        let p = try #require(StrategyFactory.make(both) as? PilotStrategy).settings
        #expect(p.psiSInit == .perturbed && p.psiSNoise == 0.05 && p.seed == 1)
        #expect(try #require(StrategyFactory.make(plain) as? PilotStrategy).settings.psiSInit == .copy)
        #expect(StrategyFactory.make(try RunSettings(RunSettingsTests.config(run: "algorithm = \"shepherd_lora\"\n"))).name == "shepherd_lora")

        func refused(_ text: String, run: String = "", naming key: String) {
            do { _ = try RunSettings(RunSettingsTests.config(run: run, text)); Issue.record("accepted: \(text)") }
            catch { #expect("\(error)".contains(key), "\(error)") }
        }
        refused("[pilot]\npsi_s_noise = 0.05\n", naming: "pilot.psi_s_noise")
        refused("[pilot]\npsi_s_init = \"perturbed\"\n", run: "algorithm = \"fedavg\"\n", naming: "pilot.psi_s_init")
        #expect(throws: (any Error).self) { _ = try RunSettingsTests.config("[eval]\nwhen = \"during\"\n") }
    }
}
