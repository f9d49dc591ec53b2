import PilotCore
@testable import PilotFederation
import PilotJob
import PilotModel
import PilotTensor
import Testing

/// Heterogeneous LoRA ranks (`model.lora_ranks`, HetLoRA): zero-padding and leading components, the
/// averaging methods on padded factors, ATA's distances between effective updates from the factors'
/// Gram matrices against the dense ΔW, and the config's refusals (prepare / execute / assert).
@Suite("HetLoRA: clients of different LoRA ranks")
struct HetLoRATests {
    /// Two LoRA targets of a toy LM: q (in 7, out 5) and down (in 6, out 9).
    static let targets: [(name: String, inF: Int, outF: Int)] = [("lm/layers/0/attn/q/", 7, 5), ("lm/layers/0/mlp/down/", 6, 9)]

    /// Random LoRA tensors of rank `r` for `targets`, deterministic in `seed`.
    static func lora(rank r: Int, seed: UInt64) -> NamedTensors {
        var rng = SplitMix64(seed: seed)
        func draw(_ n: Int) -> [Float] { (0..<n).map { _ in Float(Int(rng.next() % 2001) - 1000) / 1000 } }
        var t = NamedTensors()
        for (p, i, o) in targets {
            try! t.append(p + "lora_a", shape: [i, r], values: draw(i * r))
            try! t.append(p + "lora_b", shape: [r, o], values: draw(r * o))
        }
        return t
    }

    /// The dense reference: Σ_targets ‖s_i·A_i·B_i − s_j·A_j·B_j‖²_F, every ΔW formed in Double.
    static func denseDistance(_ x: NamedTensors, _ rx: Int, _ sx: Double, _ y: NamedTensors, _ ry: Int, _ sy: Double) -> Double {
        var d2 = 0.0
        for (p, inF, outF) in targets {
            func delta(_ t: NamedTensors, _ r: Int, _ s: Double) -> [Double] {
                let a = Array(t[p + "lora_a"]!), b = Array(t[p + "lora_b"]!), stored = t.shape(of: p + "lora_a")![1]
                var w = [Double](repeating: 0, count: inF * outF)
                for i in 0..<inF { for o in 0..<outF { for q in 0..<r { w[i * outF + o] += s * Double(a[i * stored + q]) * Double(b[q * outF + o]) } } }
                return w
            }
            for (u, v) in zip(delta(x, rx, sx), delta(y, ry, sy)) { d2 += (u - v) * (u - v) }
        }
        return d2.squareRoot()
    }

    @Test("resized: padding puts zeros after each client's components (A's columns, B's rows) and cutting back returns the same bits; other tensors pass unchanged")
    func padAndCut() throws {
        var t = try NamedTensors(names: ["x/lora_a", "x/lora_b"], shapes: [[2, 1], [1, 3]], values: [1, 2, 3, 4, 5])
        try t.append("connector/w", shape: [2], values: [7, 8])
        let padded = try HetLoRA.resized(t, rank: 3)
        #expect(padded.shape(of: "x/lora_a") == [2, 3] && padded.shape(of: "x/lora_b") == [3, 3])
        #expect(Array(padded["x/lora_a"]!) == [1, 0, 0, 2, 0, 0])
        #expect(Array(padded["x/lora_b"]!) == [3, 4, 5, 0, 0, 0, 0, 0, 0])
        #expect(Array(padded["connector/w"]!) == [7, 8])
        #expect(try HetLoRA.resized(padded, rank: 1) == t)
        #expect(try HetLoRA.rank(of: padded) == 3)
    }

    @Test("every client starts from the leading components of one adapter: a lower rank's initial A is the leading columns of the largest rank's, drawn from the same stream")
    func alignedInitialA() throws {
        func a(_ r: Int, _ initial: ParameterInit) -> [Float] {
            ParameterStore(specs: [ParameterSpec("lm/layers/0/attn/q/lora_a", [5, r], group: "lora", init: initial)], trainableGroups: { _ in true }, seed: 9).trainable.values
        }
        let full = a(4, .uniform(bound: 0.5)), cut = a(2, .uniformLeadingColumns(bound: 0.5, columns: 4))
        var leading: [Float] = []
        for i in 0..<5 { leading += full[(i * 4)..<(i * 4 + 2)] }
        #expect(cut == leading)
        #expect(cut != a(2, .uniform(bound: 0.5)))
        let o = try Self.settings("lora_ranks = [4, 8, 16]\n").modelOverrides
        #expect(o.client(0).loraInitRank == 16 && o.client(1).loraInitRank == 16 && o.client(2).loraInitRank == nil)
        #expect(o.client(0).apply(to: .tiny).loraInitRank == 16)
        #expect(try Self.settings("lora_ranks = [8, 8, 8]\n").modelOverrides.client(1).loraInitRank == nil)
    }

    @Test("effective-update distances from the factors' Gram matrices equal the dense ‖ΔW_i − ΔW_j‖ to 1e-6 relative, padded or not, at ranks 2, 3 and 5 with their own scales")
    func gramIdentityMatchesDense() throws {
        let ranks = [2, 3, 5, 3], scales = [2.0, 0.5, 1.25, 2.0]
        let own = ranks.enumerated().map { Self.lora(rank: $0.element, seed: UInt64(11 + $0.offset)) }
        let padded = try own.map { try HetLoRA.resized($0, rank: 5) }
        let d = try Aggregate.effectiveUpdateDistances(padded, ranks: ranks, scales: scales)
        for i in 0..<4 {
            #expect(d[i * 4 + i] == 0)
            for j in 0..<4 where j != i {
                let dense = Self.denseDistance(own[i], ranks[i], scales[i], own[j], ranks[j], scales[j])
                #expect(abs(d[i * 4 + j] - dense) <= 1e-6 * dense, "(\(i), \(j)): \(d[i * 4 + j]) vs dense \(dense)")
                #expect(d[i * 4 + j] == d[j * 4 + i])
            }
        }
        // clients 1 and 3 share a rank: unpadded factors give the same distance
        let pair = try Aggregate.effectiveUpdateDistances([own[1], own[3]], ranks: [3, 3], scales: [scales[1], scales[3]])
        #expect(abs(pair[1] - d[1 * 4 + 3]) <= 1e-12 * d[1 * 4 + 3])
    }

    @Test("the distance is on ΔW, not on the factors: a rank-2 client and a rank-4 client with the same product are at distance exactly 0")
    func sameProductAtAnotherRank() throws {
        let small = Self.lora(rank: 2, seed: 5)
        // rank 4: [A, A/2] and [B; 0]·… the same product A·B, with s = 1 each: the extra components are a zero B
        var big = NamedTensors()
        for (p, inF, outF) in Self.targets {
            let a = Array(small[p + "lora_a"]!), b = Array(small[p + "lora_b"]!)
            var a4 = [Float](repeating: 0, count: inF * 4)
            for i in 0..<inF { for q in 0..<2 { a4[i * 4 + q] = a[i * 2 + q]; a4[i * 4 + 2 + q] = a[i * 2 + q] / 2 } }
            try big.append(p + "lora_a", shape: [inF, 4], values: a4)
            try big.append(p + "lora_b", shape: [4, outF], values: b + [Float](repeating: 0, count: 2 * outF))
        }
        let d = try Aggregate.effectiveUpdateDistances([try HetLoRA.resized(small, rank: 4), big], ranks: [2, 4], scales: [1, 1])
        #expect(abs(d[1]) <= 1e-12, "\(d[1])")
        // a duplicated client: exactly 0
        let dup = try Aggregate.effectiveUpdateDistances([small, small], ranks: [2, 2], scales: [2, 2])
        #expect(dup[1] == 0)
    }

    /// Two clients with one target (in 2, out 2): client 0 at rank 1, client 1 at rank 2; n = 1 and 3.
    static let lora = ClientLoRA(ranks: [1, 2], alphas: [2, 4])
    static let roster = Roster(clientTasks: [0, 0], clientSamples: [1, 3], numTasks: 1, lora: lora)
    static func hand() throws -> [ClientUpdate] {
        var c0 = try NamedTensors(names: ["t/lora_a", "t/lora_b"], shapes: [[2, 1], [1, 2]], values: [1, 2, 4, 8])
        try c0.append("connector/w", shape: [1], values: [1])
        var c1 = try NamedTensors(names: ["t/lora_a", "t/lora_b"], shapes: [[2, 2], [2, 2]], values: [5, 6, 7, 8, 4, 4, 8, 8])
        try c1.append("connector/w", shape: [1], values: [5])
        return [ClientUpdate(client: 0, examples: 1, tensors: c0, metrics: ["loss_total": 1]),
                ClientUpdate(client: 1, examples: 3, tensors: c1, metrics: ["loss_total": 1])]
    }

    @Test("FedAvg over ranks 1 and 2: the n_k-weighted mean of the zero-padded factors (by hand), and each client takes its leading components")
    func fedAvgByHand() throws {
        let step = ServerStep(strategy: FedAvgStrategy(learningRate: 1e-3), roster: Self.roster, robust: .init(), dp: nil, seed: 1)
        let out = try step(round: 1, updates: try Self.hand(), serverState: [:])
        #expect(out.rejected.isEmpty)
        let shared = try #require(out.shared)
        // A: client 0 padded [[1, 0], [2, 0]], client 1 [[5, 6], [7, 8]]; (1·x0 + 3·x1) / 4
        #expect(Array(shared["t/lora_a"]!) == [4, 4.5, 5.75, 6])
        // B: client 0 padded [[4, 8], [0, 0]], client 1 [[4, 4], [8, 8]]
        #expect(Array(shared["t/lora_b"]!) == [4, 5, 6, 6])
        #expect(Array(shared["connector/w"]!) == [4])
        let mine = try ClientHost.leading(ClientResult(shared: shared), client: 0, lora: Self.lora)
        #expect(mine.shared?.shape(of: "t/lora_a") == [2, 1] && Array(mine.shared!["t/lora_a"]!) == [4, 5.75])
        #expect(Array(mine.shared!["t/lora_b"]!) == [4, 5])
        let theirs = try ClientHost.leading(ClientResult(shared: shared), client: 1, lora: Self.lora)
        #expect(theirs.shared == shared)
    }

    @Test("FedAdam over ranks 1 and 2: its server state and step have the largest rank")
    func fedAdamPadded() throws {
        let step = ServerStep(strategy: FedAdamStrategy(learningRate: 1e-3, hyper: .init()), roster: Self.roster, robust: .init(), dp: nil, seed: 1)
        let out = try step(round: 1, updates: try Self.hand(), serverState: [:])
        #expect(out.shared?.shape(of: "t/lora_a") == [2, 2] && out.shared?.shape(of: "t/lora_b") == [2, 2])
        // m and v over the padded layout: A [2, 2], B [2, 2] and the connector's one value
        #expect(out.serverState["m"]?.count == 9 && out.serverState["v"]?.count == 9)
    }

    @Test("an update whose rank is not its client's is refused by name; the others are aggregated")
    func wrongRankRefused() throws {
        var ups = try Self.hand()
        ups[0].tensors = try HetLoRA.resized(ups[0].tensors, rank: 2)
        let step = ServerStep(strategy: FedAvgStrategy(learningRate: 1e-3), roster: Self.roster, robust: .init(), dp: nil, seed: 1)
        let out = try step(round: 1, updates: ups, serverState: [:])
        #expect(out.rejected.map(\.client) == [0])
        #expect(out.rejected.first?.reason.contains("rank 2") == true && out.rejected.first?.reason.contains("model.lora_ranks") == true)
        #expect(Array(out.shared!["t/lora_a"]!) == [5, 6, 7, 8])
    }

    @Test("Pilot over ranks 2, 3 and 5: ATA on the effective updates, the padded factors mixed, each personal LoRA at its client's rank")
    func pilotMixesEffectiveUpdates() throws {
        let ranks = [2, 3, 5]
        let lora = ClientLoRA(ranks: ranks, alphas: ranks.map { Float(2 * $0) })
        let roster = Roster(clientTasks: [0, 1, 0], clientSamples: [2, 3, 4], numTasks: 2, lora: lora)
        let updates = try ranks.enumerated().map { k, r -> ClientUpdate in
            var t = try NamedTensors(names: ["connector/task_adapters/\(roster.clientTasks[k])/w"], shapes: [[2]], values: [Float(k), 1])
            t = try t.merging(Self.lora(rank: r, seed: UInt64(30 + k)))
            return ClientUpdate(client: k, examples: roster.clientSamples[k], tensors: t, metrics: ["loss_total": 1])
        }
        var settings = PilotStrategy.Settings(); settings.ataM = 1
        let strategy = PilotStrategy(settings: settings)
        let out = try ServerStep(strategy: strategy, roster: roster, robust: .init(), dp: nil, seed: 1)(round: 2, updates: updates, serverState: [:])
        for (k, r) in ranks.enumerated() {
            let p = try #require(out.personal[k])
            #expect(try HetLoRA.rank(of: p) == r, "client \(k)")
        }
        // the mix the server applied: ATA's matrix on the effective-update distances, over the padded factors
        let padded = try updates.map { u -> ClientUpdate in
            var v = u; v.tensors = try HetLoRA.resized(u.tensors, rank: 5).filter { HetLoRA.factor($0) != nil }; return v
        }
        let d = try Aggregate.effectiveUpdateDistances(padded.map(\.tensors), ranks: ranks, scales: [2, 2, 2])
        let m = try Aggregate.ataMixingMatrix(distances: d, samples: roster.clientSamples, tasks: roster.clientTasks,
                                              selection: .topM, m: 1, normalisation: .normalised)
        let mixed = Aggregate.mix(padded.map(\.tensors.values), matrix: m)
        for (k, r) in ranks.enumerated() {
            let expected = try HetLoRA.resized(try padded[k].tensors.with(values: mixed[k]), rank: r)
            #expect(out.personal[k]!.values.map(\.bitPattern) == expected.values.map(\.bitPattern), "client \(k)")
        }
        // the nearest neighbour of each client by ΔW, not by the padded factors
        let factorDistances = Aggregate.pairwiseDistances(Aggregate.rows(padded.map(\.tensors.values), length: padded[0].tensors.values.count), clients: 3, length: padded[0].tensors.values.count)
        #expect(d != factorDistances)
    }

    // MARK: - the config

    static func settings(_ model: String, algorithm: String = "pilot") throws -> RunSettings {
        try RunSettings(RunConfig(file: ConfigFile(text: "[run]\nalgorithm = \"\(algorithm)\"\ndata = \"d\"\nbase = \"b.h5\"\n[model]\n" + model, path: "/tmp/x.toml")))
    }

    @Test("model.lora_ranks decodes; alpha is 2·r_k, or model.lora_alpha for every client; each client's model overrides carry its rank")
    func decodes() throws {
        let s = try Self.settings("lora_ranks = [4, 8, 16]\n")
        #expect(s.clientLoRA == ClientLoRA(ranks: [4, 8, 16], alphas: [8, 16, 32]))
        #expect(s.modelOverrides.client(2).loraRank == 16 && s.modelOverrides.client(2).loraRanks == nil)
        #expect(s.modelOverrides.client(0).apply(to: .tiny).loraScale == 2)
        let fixed = try Self.settings("lora_ranks = [4, 8]\nlora_alpha = 16\n")
        #expect(fixed.clientLoRA?.alphas == [16, 16] && fixed.clientLoRA?.scale(0) == 4)
        #expect(try Self.settings("").clientLoRA == nil)
    }

    @Test("refused at config time, naming the key: a list that does not cover the clients, both rank keys, mixed ranks for centralized and feddpa, a rank above a target's smallest dimension, a non-integer")
    func refusals() throws {
        func message(_ body: () throws -> Void) -> String {
            do { try body(); return "" } catch { return "\(error)" }
        }
        let short = message { _ = try Self.settings("lora_ranks = [4, 8]\n").placement(clients: 3, worldSize: 4) }
        #expect(short.contains("model.lora_ranks has 2 rank(s)") && short.contains("3 clients"), "\(short)")
        let both = message { _ = try Self.settings("lora_rank = 8\nlora_ranks = [4, 8, 16]\n").placement(clients: 3, worldSize: 4) }
        #expect(both.contains("model.lora_rank") && both.contains("model.lora_ranks"), "\(both)")
        for method in ["centralized", "feddpa"] {
            let m = message { _ = try Self.settings("lora_ranks = [4, 8, 16]\n", algorithm: method).placement(clients: 3, worldSize: 4) }
            #expect(m.contains("model.lora_ranks") && m.contains(method), "\(m)")
            #expect(message { _ = try Self.settings("lora_ranks = [8, 8, 8]\n", algorithm: method).placement(clients: 3, worldSize: 4) } == "")
        }
        var micro = ModelConfig.tiny
        micro.width = 64; micro.heads = 2; micro.ffnHidden = 128
        let big = message { try Self.settings("lora_ranks = [4, 65, 8]\n").checkLoRARankDimensions(micro) }
        #expect(big.contains("model.lora_ranks (client 1) = 65") && big.contains("64"), "\(big)")
        let one = message { try Self.settings("lora_rank = 100\n").checkLoRARankDimensions(micro) }
        #expect(one.contains("model.lora_rank = 100"), "\(one)")
        #expect(message { try Self.settings("lora_ranks = [4, 64, 8]\n").checkLoRARankDimensions(micro) } == "")
        let typed = message { _ = try Self.settings("lora_ranks = [4, \"8\"]\n") }
        #expect(typed.contains("model.lora_ranks") && typed.contains("integers"), "\(typed)")
        let zero = message { _ = try Self.settings("lora_ranks = [4, 0]\n") }
        #expect(zero.contains("model.lora_ranks") && zero.contains("position 1"), "\(zero)")
    }

    @Test("a resume that changes a client's rank is refused, naming the client and both ranks; the same ranks pass")
    func resumeRefusesRankChange() throws {
        let then = try Self.settings("lora_ranks = [4, 8, 16]\n")
        let now = try Self.settings("lora_ranks = [4, 16, 16]\n")
        do {
            try now.checkResumedRanks(before: then, recorded: [4, 8, 16], clients: 3, run: "runs/x") { 16 }
            Issue.record("expected a refusal")
        } catch {
            #expect("\(error)".contains("client 1's LoRA rank was 8") && "\(error)".contains("would be 16"), "\(error)")
        }
        try then.checkResumedRanks(before: then, recorded: [4, 8, 16], clients: 3, run: "runs/x") { 16 }
        // from one rank for all (the base's 16) to a list
        do {
            try then.checkResumedRanks(before: try Self.settings(""), recorded: [], clients: 3, run: "runs/x") { 16 }
            Issue.record("expected a refusal")
        } catch {
            #expect("\(error)".contains("client 0's LoRA rank was 16 (the base checkpoint's rank) and would be 4 (model.lora_ranks)"), "\(error)")
        }
    }
}
