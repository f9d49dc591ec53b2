import PilotComm
import PilotCore
@testable import PilotFederation
import PilotJob
import PilotTensor
import Testing

/// Secure aggregation (`secure.aggregation`): the fixed-point arithmetic, the pairwise masks from a
/// Curve25519 key agreement, and the round through the one transport, in-process. The masked sum
/// must equal the plain fixed-point sum bit for bit, while no single masked update equals its
/// encoding.
@Suite("secure aggregation: fixed point, pairwise masks, the secure round (in-process)")
struct SecureAggregationTests {
    /// Deterministic test vectors of `p` values around ±`scale`.
    static func vector(_ k: Int, _ p: Int, scale: Float = 1) -> [Float] {
        var g = SplitMix64(seed: UInt64(k) &+ 77)
        return (0..<p).map { _ in (Float(g.next() % 2_000_001) / 1_000_000 - 1) * scale }
    }

    @Test("fixed point: the mean is within K·2⁻²⁵ of the float mean; values beyond ±127 are clipped and counted")
    func fixedPoint() throws {
        let vs = (0..<5).map { Self.vector($0, 1000, scale: 3) }
        let w: [Double] = [10, 20, 30, 40, 50]
        let (mean, clipped) = FixedPoint.mean(vs, weights: w)
        let exact = try Aggregate.weightedMean(vs, weights: w)
        #expect(clipped == 0)
        let worst = zip(mean, exact).map { abs(Double($0) - Double($1)) }.max()!
        #expect(worst <= 5.0 / FixedPoint.scale + 1e-6, "worst \(worst)")
        #expect(worst > 0, "fixed point rounds: it is not the float mean")
        let e = FixedPoint.encode([200, -1000, 126.5, .nan, 1], share: 1)
        #expect(e.clipped == 3)
        #expect(FixedPoint.decode(e.values) == [127, -127, 126.5, 0, 1])
        // the extreme sum (every client at +B) does not wrap
        let top = FixedPoint.mean([[127, -127], [127, -127], [127, -127]], weights: [1, 1, 1]).mean
        #expect(abs(top[0] - 127) < 1e-6 && abs(top[1] + 127) < 1e-6)
    }

    @Test("pairwise masks: both ends of a pair derive one seed; the streams are deterministic and differ by pair and round; masked sums equal the plain sums bit for bit")
    func masksCancel() throws {
        let k = 5, p = 40_000   // more than two ChaCha20 blocks of 16,384 values
        let pairs = (0..<k).map { _ in PairwiseMasks.keyPair() }
        let s01 = try PairwiseMasks.seed(pairs[0].privateKey, peer: pairs[1].publicKey, round: 3, group: 0, pair: (0, 1))
        let s10 = try PairwiseMasks.seed(pairs[1].privateKey, peer: pairs[0].publicKey, round: 3, group: 0, pair: (1, 0))
        #expect(try PairwiseMasks.stream(s01, count: 100) == PairwiseMasks.stream(s10, count: 100))
        #expect(try PairwiseMasks.stream(s01, count: 100) == PairwiseMasks.stream(s01, count: 100))
        let otherRound = try PairwiseMasks.seed(pairs[0].privateKey, peer: pairs[1].publicKey, round: 4, group: 0, pair: (0, 1))
        #expect(try PairwiseMasks.stream(s01, count: 100) != PairwiseMasks.stream(otherRound, count: 100))
        #expect(try PairwiseMasks.stream(s01, count: 20_000).prefix(100) == PairwiseMasks.stream(s01, count: 100)[...])

        let encoded = (0..<k).map { FixedPoint.encode(Self.vector($0, p), share: 0.2).values }
        var plain = [UInt32](repeating: 0, count: p), masked = plain
        let peers = (0..<k).map { ($0, pairs[$0].publicKey) }
        for c in 0..<k {
            var m = encoded[c]
            try PairwiseMasks.mask(&m, me: c, key: pairs[c].privateKey, peers: peers, round: 3, group: 0)
            let same = zip(m, encoded[c]).filter { $0 == $1 }.count
            #expect(same < 10, "client \(c): \(same) of \(p) masked words equal the encoding")
            FixedPoint.add(encoded[c], into: &plain)
            FixedPoint.add(m, into: &masked)
        }
        #expect(masked == plain)
        // a missing client leaves its masks in the sum
        var partial = [UInt32](repeating: 0, count: p)
        for c in 0..<(k - 1) {
            var m = encoded[c]
            try PairwiseMasks.mask(&m, me: c, key: pairs[c].privateKey, peers: peers, round: 3, group: 0)
            FixedPoint.add(m, into: &partial)
        }
        var expected = [UInt32](repeating: 0, count: p)
        for c in 0..<(k - 1) { FixedPoint.add(encoded[c], into: &expected) }
        #expect(partial != expected)
    }

    static let tasks = RoundExchangeTests.tasks, samples = RoundExchangeTests.samples

    /// One round of `strategy` on `size` ranks with `mode`: what each client got, and what the server saw.
    static func round(_ strategy: @escaping @Sendable () -> any SecureAveraging, mode: SecureMode?, size: Int,
                      updates make: @escaping @Sendable (Int) -> ClientUpdate, participants: Set<Int>? = nil) throws
        -> (results: [Int: ClientResult], seen: [ClientUpdate], state: NamedTensors?) {
        let out = try InProcessCommunicator.run(size: size) { world -> ([Int: ClientResult], [ClientUpdate], NamedTensors?) in
            let placement = try Placement(clients: 6, worldSize: size)
            let mine = placement.clients(onRank: world.rank)
            let fed = try Federation(world: world, clientTasks: tasks, numTasks: 3, placement: placement, localSamples: mine.map { samples[$0] })
            let s = strategy()
            var updates = mine.filter { participants?.contains($0) ?? true }.map(make)
            var seen: [ClientUpdate] = []
            let exchange: RoundExchange.Result
            if let mode {
                let secure = SecureRound(mode: mode, strategy: s, federation: fed, dp: nil, seed: 1, minimumUpdates: 1)
                updates = try secure.prepare(round: 2, updates: updates).updates
                exchange = try RoundExchange.run(updates, federation: fed) { all in
                    seen = all
                    return try secure.server(round: 2, updates: all, serverState: [:])
                }
            } else {
                exchange = try RoundExchange.run(updates, federation: fed) { all in
                    try s.aggregate(round: 2, updates: all, serverState: [:], roster: fed.roster)
                }
            }
            var got: [Int: ClientResult] = [:]
            for c in mine { got[c] = ClientResult(shared: exchange.shared, personal: exchange.personal[c]) }
            return (got, seen, exchange.serverState)
        }
        return (out.reduce(into: [:]) { acc, part in acc.merge(part.0) { a, _ in a } }, out.flatMap(\.1), out.compactMap(\.2).first)
    }

    static func fedavgUpdate(_ k: Int) -> ClientUpdate {
        ClientUpdate(client: k, examples: samples[k], tensors: try! NamedTensors(names: ["connector/w", "lm/lora_a"], counts: [300, 200],
                                                                              values: vector(k, 500, scale: 2)), metrics: ["loss_total": 1])
    }

    @Test("fedavg: the secure round equals the plain fixed-point round bit for bit on 7 and 3 ranks, and the fixed-point mean; the server never sees an encoded update")
    func fedavg() throws {
        let make: @Sendable () -> any SecureAveraging = { FedAvgStrategy(learningRate: 1e-3) }
        let secure = try Self.round(make, mode: .masked, size: 7, updates: Self.fedavgUpdate)
        let plain = try Self.round(make, mode: .plainFixedPoint, size: 7, updates: Self.fedavgUpdate)
        let narrow = try Self.round(make, mode: .masked, size: 3, updates: Self.fedavgUpdate)
        let expected = FixedPoint.mean((0..<6).map { Self.fedavgUpdate($0).tensors.values }, weights: Self.samples.map(Double.init)).mean
        for k in 0..<6 {
            #expect(secure.results[k]?.shared?.values.map(\.bitPattern) == expected.map(\.bitPattern), "client \(k)")
            #expect(plain.results[k]?.shared?.values.map(\.bitPattern) == expected.map(\.bitPattern), "client \(k)")
            #expect(narrow.results[k]?.shared?.values.map(\.bitPattern) == expected.map(\.bitPattern), "client \(k)")
        }
        #expect(secure.seen.count == 6 && plain.seen.count == 6)
        for (m, q) in zip(secure.seen, plain.seen) {
            let same = zip(m.tensors.values, q.tensors.values).filter { $0.bitPattern == $1.bitPattern }.count
            #expect(same < 5, "client \(m.client): the server saw \(same) of 500 words of its plain encoding")
        }
        // the float average differs (fixed point rounds), so the mode is not a no-op
        let float = try Self.round(make, mode: nil, size: 7, updates: Self.fedavgUpdate)
        #expect(float.results[0]?.shared?.values != expected)
    }

    @Test("fedadam: the pseudo-gradient is the secure mean; its step and server state equal the plain fixed-point round's")
    func fedadam() throws {
        let make: @Sendable () -> any SecureAveraging = { FedAdamStrategy(learningRate: 1e-3, hyper: FedAdamServer.Hyper()) }
        let secure = try Self.round(make, mode: .masked, size: 4, updates: Self.fedavgUpdate)
        let plain = try Self.round(make, mode: .plainFixedPoint, size: 4, updates: Self.fedavgUpdate)
        #expect(secure.results[2]?.shared?.values.map(\.bitPattern) == plain.results[2]?.shared?.values.map(\.bitPattern))
        #expect(secure.state?.values.map(\.bitPattern) == plain.state?.values.map(\.bitPattern) && secure.state?.isEmpty == false)
    }

    @Test("pilot (LoRA in the clear): Eq. 10 summed within each task equals the plain fixed-point round; ATA gets the clear LoRA; a sample leaves absent tasks out")
    func pilot() throws {
        let make: @Sendable () -> any SecureAveraging = { PilotStrategy(settings: .init()) }
        for participants in [nil, Set([0, 1, 3, 4])] as [Set<Int>?] {
            let secure = try Self.round(make, mode: .masked, size: 7, updates: RoundExchangeTests.update, participants: participants)
            let plain = try Self.round(make, mode: .plainFixedPoint, size: 7, updates: RoundExchangeTests.update, participants: participants)
            let float = try Self.round(make, mode: nil, size: 7, updates: RoundExchangeTests.update, participants: participants)
            for k in 0..<6 {
                #expect(secure.results[k]?.shared == plain.results[k]?.shared, "client \(k)")
                #expect(secure.results[k]?.personal == float.results[k]?.personal, "client \(k): ATA on the clear LoRA")
            }
            let shared = try #require(secure.results[0]?.shared)
            // task 0 with clients 0 (n=10) and 2 (n=30): (10·0 + 30·2)/40 = 1.5; with client 0 alone: 0
            #expect(shared["connector/task_adapters/0/w"].map(Array.init) == (participants == nil ? [1.5, 3] : [0, 0]))
            for u in secure.seen { #expect(u.tensors["lm/lora_a"].map(Array.init) == RoundExchangeTests.update(u.client).tensors["lm/lora_a"].map(Array.init)) }
        }
    }

    @Test("a client refuses its own non-finite update before the roll call; the others' masks still cancel")
    func selfRefusal() throws {
        let make: @Sendable () -> any SecureAveraging = { FedAvgStrategy(learningRate: 1e-3) }
        let bad: @Sendable (Int) -> ClientUpdate = { k in
            var u = Self.fedavgUpdate(k)
            if k == 3 { u.tensors.values[7] = .nan }
            return u
        }
        let secure = try Self.round(make, mode: .masked, size: 4, updates: bad)
        let expected = FixedPoint.mean([0, 1, 2, 4, 5].map { Self.fedavgUpdate($0).tensors.values }, weights: [0, 1, 2, 4, 5].map { Double(Self.samples[$0]) }).mean
        #expect(secure.seen.map(\.client) == [0, 1, 2, 4, 5])
        #expect(secure.results[0]?.shared?.values.map(\.bitPattern) == expected.map(\.bitPattern))
    }

    @Test("with DP, each client adds the very noise the server adds without secure aggregation: the secure mean is the fixed-point mean of the server-noised updates")
    func differentialPrivacy() throws {
        let dp = DPSettings(clip: 1, noiseMultiplier: 0.5, delta: 1e-5)
        let out = try InProcessCommunicator.run(size: 3) { world -> [Float]? in
            let placement = try Placement(clients: 6, worldSize: 3)
            let mine = placement.clients(onRank: world.rank)
            let fed = try Federation(world: world, clientTasks: Self.tasks, numTasks: 3, placement: placement, localSamples: mine.map { Self.samples[$0] })
            let secure = SecureRound(mode: .masked, strategy: FedAvgStrategy(learningRate: 1e-3), federation: fed, dp: dp, seed: 9, minimumUpdates: 1)
            let updates = try secure.prepare(round: 4, updates: mine.map(Self.fedavgUpdate)).updates
            return try RoundExchange.run(updates, federation: fed) { all in try secure.server(round: 4, updates: all, serverState: [:]) }.shared?.values
        }
        let noised = (0..<6).map { ClientPrivacy.noised(Self.fedavgUpdate($0).tensors.values, std: 0.5, seed: 9, round: 4, client: $0) }
        let expected = FixedPoint.mean(noised, weights: Self.samples.map(Double.init)).mean
        #expect(out[0]?.map(\.bitPattern) == expected.map(\.bitPattern))
        #expect(out[0] != FixedPoint.mean((0..<6).map { Self.fedavgUpdate($0).tensors.values }, weights: Self.samples.map(Double.init)).mean)
    }

    static func settings(_ text: String, algorithm: String = "fedavg") throws -> RunSettings {
        try RunSettings(RunConfig(file: ConfigFile(text: "[run]\nalgorithm = \"\(algorithm)\"\ndata = \"d\"\nbase = \"b.h5\"\n" + text, path: "/tmp/x.toml")))
    }

    @Test("refused at config time, naming the key and the reason: robust rules, max_update_norm, pilot without lora_in_clear, local/centralized, mixed ranks")
    func refusals() throws {
        func message(_ text: String, algorithm: String = "fedavg") -> String {
            do { _ = try Self.settings(text, algorithm: algorithm).placement(clients: 9, worldSize: 10); return "" } catch { return "\(error)" }
        }
        let on = "[secure]\naggregation = true\n"
        #expect(message(on) == "")
        #expect(message(on, algorithm: "fedadam") == "" && message(on, algorithm: "shepherd") == "" && message(on, algorithm: "fedprox") == "")
        for rule in ["krum", "median", "trimmed_mean", "multi_krum"] {
            let m = message(on + "[robust]\naggregator = \"\(rule)\"\n")
            #expect(m.contains("robust.aggregator = \(rule)") && m.contains("individual update"), "\(m)")
        }
        let norm = message(on + "[robust]\nmax_update_norm = 5.0\n")
        #expect(norm.contains("robust.max_update_norm") && norm.contains("median"), "\(norm)")
        let pilot = message(on, algorithm: "pilot")
        #expect(pilot.contains("secure.lora_in_clear") && pilot.contains("ATA"), "\(pilot)")
        #expect(message(on + "lora_in_clear = true\n", algorithm: "pilot") == "")
        for method in ["local", "centralized"] {
            #expect(message(on, algorithm: method).contains("nothing to aggregate securely"))
        }
        let ranks = message(on + "[model]\nlora_ranks = [2, 4, 8, 2, 4, 8, 2, 4, 8]\n")
        #expect(ranks.contains("model.lora_ranks"), "\(ranks)")
        #expect(message("[secure]\nfixed_point = true\n[robust]\naggregator = \"median\"\n").contains("secure.fixed_point = true"))
        #expect(message("[secure]\naggregation = true\nfixed_point = false\n").contains("secure.fixed_point = false"))
        // unset keys stay out of the effective config (committed runs keep their hash)
        #expect(try Self.settings("").secureMode == nil)
        #expect(try RunConfig(file: ConfigFile(text: "[run]\ndata = \"d\"\nbase = \"b.h5\"\n", path: "/tmp/x.toml")).effectiveFile.contains("secure") == false)
    }
}
