import PilotComm
import PilotCore
@testable import PilotFederation
import PilotJob
import PilotTensor
import Testing

/// `exchange.compress*` (docs/compression.md): the codecs' byte counts, error bounds and top-k's
/// tie-break; the coder's error feedback, its state in checkpoints, the exchange's bits on any
/// placement, and the config refusals.
@Suite("compressed updates: codecs, error feedback, exchange")
struct CompressionTests {
    /// Deterministic values of mixed sign and scale.
    static func values(_ n: Int, seed: UInt64 = 7) -> [Float] {
        var s = SplitMix64(seed: seed)
        return (0..<n).map { i in (Float(s.next() % 20001) / 10000 - 1) * (i % 7 == 0 ? 3 : 0.01) }
    }

    @Test("exact byte counts: 4n, 2n, 2n, n + 4⌈n/64⌉, 4 + 8⌈fn⌉")
    func byteCounts() throws {
        for n in [0, 1, 63, 64, 65, 1000] {
            let x = Self.values(n)
            let expected: [UpdateCodec: Int] = [.none: 4 * n, .fp16: 2 * n, .bf16: 2 * n, .int8: n + 4 * ((n + 63) / 64),
                                                .topk: 4 + 8 * (n == 0 ? 0 : max(1, Int((0.1 * Double(n)).rounded(.up))))]
            for codec in UpdateCodec.allCases {
                #expect(codec.byteCount(n, fraction: 0.1) == expected[codec]!, "\(codec) n=\(n)")
                let bytes = codec.encode(x, fraction: 0.1)
                #expect(bytes.count == expected[codec]!, "\(codec) n=\(n)")
                #expect(try codec.decode(bytes[...], count: n, fraction: 0.1).count == n)
            }
        }
        #expect(UpdateCodec.topkCount(10, fraction: 0.1) == 1 && UpdateCodec.topkCount(11, fraction: 0.1) == 2)
        #expect(UpdateCodec.topkCount(3, fraction: 0.01) == 1 && UpdateCodec.topkCount(5, fraction: 1) == 5)
        // a wrong length is refused, not read past
        #expect(throws: PilotError.self) { try UpdateCodec.int8.decode([UInt8](repeating: 0, count: 10)[...], count: 64) }
    }

    @Test("round trips within each codec's bound: fp16 2⁻¹¹ relative, bf16 2⁻⁸, int8 absmax/254 per block; none exact")
    func errorBounds() throws {
        let x = Self.values(1000) + [1e-3, -1e-3, 0, 123.456]
        #expect(try UpdateCodec.none.decode(UpdateCodec.none.encode(x)[...], count: x.count) == x)
        let h = try UpdateCodec.fp16.decode(UpdateCodec.fp16.encode(x)[...], count: x.count)
        for (a, b) in zip(x, h) where abs(a) > 6.1e-5 { #expect(abs(a - b) <= abs(a) * 0x1p-11, "fp16 \(a) → \(b)") }
        let g = try UpdateCodec.bf16.decode(UpdateCodec.bf16.encode(x)[...], count: x.count)
        for (a, b) in zip(x, g) { #expect(abs(a - b) <= abs(a) * 0x1p-8, "bf16 \(a) → \(b)") }
        let q = try UpdateCodec.int8.decode(UpdateCodec.int8.encode(x)[...], count: x.count)
        for start in stride(from: 0, to: x.count, by: 64) {
            let block = start..<min(start + 64, x.count)
            let absmax = x[block].map(abs).max()!
            for i in block { #expect(abs(x[i] - q[i]) <= absmax / 254 * (1 + 1e-5), "int8 \(i): \(x[i]) → \(q[i])") }
            #expect(x[block].map(abs).firstIndex(of: absmax).map { q[block.lowerBound + $0] != 0 } ?? true)
        }
        // saturation keeps finite values finite; NaN stays NaN (the server rejects the update)
        let big = try UpdateCodec.fp16.decode(UpdateCodec.fp16.encode([1e6, -1e6, .nan])[...], count: 3)
        #expect(big[0] == 65504 && big[1] == -65504 && big[2].isNaN)
        let bigB = try UpdateCodec.bf16.decode(UpdateCodec.bf16.encode([.greatestFiniteMagnitude, .nan])[...], count: 2)
        #expect(bigB[0].isFinite && bigB[1].isNaN)
        #expect(try UpdateCodec.bf16.decode(UpdateCodec.bf16.encode([1 + 0x1p-8])[...], count: 1) == [1], "a tie rounds to even")
        #expect(try UpdateCodec.int8.decode(UpdateCodec.int8.encode([1, .nan, 2])[...], count: 3).allSatisfy(\.isNaN))
        #expect(try UpdateCodec.int8.decode(UpdateCodec.int8.encode([0, 0])[...], count: 2) == [0, 0])
    }

    @Test("top-k keeps the largest magnitudes, ties to the lower index, the rest decode as 0")
    func topkTies() throws {
        let x: [Float] = [1, -3, 3, 2, -3, 0.5]
        #expect(TopK.select(x, keep: 2) == [1, 2])
        #expect(TopK.select(x, keep: 3) == [1, 2, 4])
        #expect(TopK.select(x, keep: 4) == [1, 2, 3, 4])
        #expect(TopK.select([1, .nan, 5], keep: 1) == [1], "a NaN is sent")
        let decoded = try UpdateCodec.topk.decode(UpdateCodec.topk.encode(x, fraction: 0.5)[...], count: 6, fraction: 0.5)
        #expect(decoded == [0, -3, 3, 0, -3, 0])
        #expect(try UpdateCodec.topk.decode(UpdateCodec.topk.encode(x, fraction: 1)[...], count: 6, fraction: 1) == x)
    }

    static func update(_ k: Int, _ values: [Float]) -> ClientUpdate {
        ClientUpdate(client: k, examples: 10 + k, tensors: try! NamedTensors(names: ["a", "b"], counts: [values.count - 2, 2], values: values))
    }

    @Test("error feedback: what top-k leaves is added to the next change, and sent + residual = change + old residual exactly")
    func errorFeedback() throws {
        let client = ExchangeCoder(up: .topk, down: .none, fraction: 0.25, updatesAreChanges: false)
        let server = ExchangeCoder(up: .topk, down: .none, fraction: 0.25, updatesAreChanges: false)
        let start = try NamedTensors(names: ["a", "b"], counts: [6, 2], values: Self.values(8, seed: 1))
        for side in [client, server] { try side.received(client: 3, shared: start, personal: nil) }
        var residual = [Float](repeating: 0, count: 8)
        var held = start.values
        for round in 1...4 {
            let x = zip(held, Self.values(8, seed: UInt64(round + 10))).map { $0 + $1 }
            let bytes = client.encode([Self.update(3, x)])
            #expect(bytes.count == 1 + 4 + 8 * 2)
            let (decoded, changes) = try server.decode(header: [1, 3, 13, 0, 0, 8], bytes: bytes)
            #expect(changes == [3])
            let change = zip(x, held).map { $0 - $1 }
            let e = zip(change, residual).map { $0 + $1 }
            let left = try #require(client.pending[3]).values
            #expect(zip(decoded, left).map { $0 + $1 } == e, "round \(round)")
            #expect(decoded.filter { $0 != 0 }.count == 2)
            client.settle(client: 3, accepted: true)
            residual = left
            let back = try start.with(values: zip(held, decoded).map { $0 + $1 })
            for side in [client, server] { try side.received(client: 3, shared: back, personal: nil) }
            held = back.values
        }
        // a refused update leaves the residual as it was
        let before = client.residuals[3]
        _ = client.encode([Self.update(3, held.map { $0 + 1 })])
        client.settle(client: 3, accepted: false)
        #expect(client.residuals[3] == before)
    }

    @Test("the first update (no reference) is dense for top-k and coded as values otherwise; FedAdam's changes are coded as they are")
    func modes() throws {
        let x = Self.values(8)
        for (codec, mode, changes) in [(UpdateCodec.topk, ExchangeCoder.Mode.dense, false), (.int8, .values, false), (.topk, .values, true)] {
            let c = ExchangeCoder(up: codec, down: .none, fraction: 0.5, updatesAreChanges: changes)
            let bytes = c.encode([Self.update(0, x)])
            #expect(bytes.first == mode.rawValue, "\(codec)")
            let s = ExchangeCoder(up: codec, down: .none, fraction: 0.5, updatesAreChanges: changes)
            let (decoded, _) = try s.decode(header: [1, 0, 10, 0, 0, 8], bytes: bytes)
            if mode == .dense { #expect(decoded == x) }
        }
    }

    @Test("checkpointed state: references and residuals come back as they were, and the strategy never sees them")
    func state() throws {
        let c = ExchangeCoder(up: .topk, down: .none, fraction: 0.25, updatesAreChanges: false)
        let ref = try NamedTensors(names: ["a", "b"], counts: [6, 2], values: Self.values(8, seed: 2))
        try c.received(client: 1, shared: ref, personal: nil)
        _ = c.encode([Self.update(1, Self.values(8, seed: 3))])
        c.settle(client: 1, accepted: true)
        let own: NamedTensors = ["lm/x": [1, 2]]
        let stored = try c.withClientState([1: own])
        let back = ExchangeCoder(up: .topk, down: .none, fraction: 0.25, updatesAreChanges: false)
        #expect(try back.restoreClient(1, stored[1]!) == own)
        #expect(back.references[1] == c.references[1] && back.residuals[1] == c.residuals[1])
        let serverState = try c.withServerState(own)
        let server = ExchangeCoder(up: .topk, down: .none, fraction: 0.25, updatesAreChanges: false)
        #expect(try server.restoreServer(serverState) == own)
        #expect(server.references[1] == ref)
    }

    /// Two FedAvg rounds of 6 clients through the exchange on `size` ranks with `up`/`down`.
    static func fedavgRounds(size: Int, up: UpdateCodec, down: UpdateCodec) throws -> [Int: [Float]] {
        let out = try InProcessCommunicator.run(size: size) { world -> [Int: [Float]] in
            let placement = try Placement(clients: 6, worldSize: size)
            let mine = placement.clients(onRank: world.rank)
            let fed = try Federation(world: world, clientTasks: [0, 0, 1, 1, 2, 2], numTasks: 3, placement: placement,
                                     localSamples: mine.map { 10 + $0 })
            let strategy = FedAvgStrategy(learningRate: 1e-3)
            let coder = ExchangeCoder(up: up, down: down, fraction: 0.3, updatesAreChanges: false)
            var held: [Int: [Float]] = Dictionary(uniqueKeysWithValues: mine.map { ($0, Self.values(130, seed: 100)) })
            for round in 1...3 {
                let updates = mine.map { k in Self.update(k, zip(held[k]!, Self.values(130, seed: UInt64(10 * round + k))).map { $0 + $1 }) }
                let exchange = try RoundExchange.run(updates, federation: fed, coder: coder) { all in
                    try strategy.aggregate(round: round, updates: all, serverState: [:], roster: fed.roster)
                }
                for k in mine {
                    try coder.clientReceived(k, sent: true, refused: false, exchange: exchange)
                    held[k] = exchange.shared!.values
                }
            }
            return held
        }
        return out.reduce(into: [:]) { acc, part in acc.merge(part) { a, _ in a } }
    }

    @Test("the same bits on every placement (6 clients on 1, 2, 3 or 6 client ranks), coded both ways, and near the uncoded run")
    func placementIndependent() throws {
        let plain = try Self.fedavgRounds(size: 7, up: .none, down: .none)
        for (up, down, tolerance) in [(UpdateCodec.int8, UpdateCodec.bf16, Float(0.05)), (.topk, .int8, 1), (.fp16, .none, 1e-3)] {
            let reference = try Self.fedavgRounds(size: 7, up: up, down: down)
            for size in [2, 3, 4] { #expect(try Self.fedavgRounds(size: size, up: up, down: down) == reference, "\(up)/\(down) on \(size) ranks") }
            let gap = zip(reference[0]!, plain[0]!).map { abs($0 - $1) }.max()!
            #expect(gap <= tolerance && gap > 0, "\(up)/\(down): \(gap) from the uncoded result")
            #expect(Set(reference.values.map { $0 }).count == 1, "every client holds the same global model")
        }
    }

    static func settings(_ text: String, algorithm: String = "fedavg") throws -> RunSettings {
        try RunSettings(RunConfig(file: ConfigFile(text: "[run]\nalgorithm = \"\(algorithm)\"\ndata = \"d\"\nbase = \"b.h5\"\n" + text, path: "/tmp/x.toml")))
    }

    @Test("refused at config time, naming the key: topk_fraction outside (0, 1], topk_fraction without topk, compression with dp.clip, local training, mixed ranks, secure aggregation")
    func refusals() throws {
        func message(_ body: () throws -> Void) -> String {
            do { try body(); return "" } catch { return "\(error)" }
        }
        let zero = message { _ = try Self.settings("[exchange]\ncompress = \"topk\"\ntopk_fraction = 0\n").placement(clients: 3, worldSize: 4) }
        #expect(zero.contains("exchange.topk_fraction") && zero.contains("(0, 1]"), "\(zero)")
        let above = message { _ = try Self.settings("[exchange]\ncompress = \"topk\"\ntopk_fraction = 1.5\n").placement(clients: 3, worldSize: 4) }
        #expect(above.contains("exchange.topk_fraction"), "\(above)")
        let stray = message { _ = try Self.settings("[exchange]\ncompress = \"int8\"\ntopk_fraction = 0.5\n").placement(clients: 3, worldSize: 4) }
        #expect(stray.contains("exchange.topk_fraction") && stray.contains("topk"), "\(stray)")
        let dp = message { _ = try Self.settings("[exchange]\ncompress = \"int8\"\n[dp]\nclip = 1.0\n").placement(clients: 3, worldSize: 4) }
        #expect(dp.contains("exchange.compress") && dp.contains("dp.clip") && dp.contains("clipped"), "\(dp)")
        #expect(message { _ = try Self.settings("[exchange]\ncompress_down = \"int8\"\n[dp]\nclip = 1.0\n").placement(clients: 3, worldSize: 4) } == "")
        let local = message { _ = try Self.settings("[exchange]\ncompress = \"fp16\"\n", algorithm: "local").placement(clients: 3, worldSize: 4) }
        #expect(local.contains("local"), "\(local)")
        let mixed = message { _ = try Self.settings("[model]\nlora_ranks = [4, 8, 16]\n[exchange]\ncompress = \"int8\"\n").placement(clients: 3, worldSize: 4) }
        #expect(mixed.contains("model.lora_ranks"), "\(mixed)")
        let secure = message { _ = try Self.settings("[exchange]\ncompress = \"int8\"\n[secure]\naggregation = true\n").placement(clients: 3, worldSize: 4) }
        #expect(secure.contains("secure.aggregation") && secure.contains("exchange.compress"), "\(secure)")
        let down = message { _ = try Self.settings("[exchange]\ncompress_down = \"topk\"\n") }
        #expect(down.contains("exchange.compress_down"), "\(down)")
        #expect(try Self.settings("").compression == nil)
        #expect(try Self.settings("[exchange]\ncompress = \"topk\"\n").compression?.fraction == 0.1)
        #expect(message { _ = try Self.settings("[exchange]\ncompress = \"none\"\n").placement(clients: 3, worldSize: 4) } == "")
    }
}
