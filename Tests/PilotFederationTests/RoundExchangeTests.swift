import PilotComm
import PilotCore
import PilotFederation
import PilotJob
import PilotTensor
import Testing

/// The one transport, the placement of clients on ranks and the client sample, in-process.
@Suite("round exchange, placement and sampling (in-process)")
struct RoundExchangeTests {
    static let tasks = [0, 1, 0, 1, 2, 2]
    static let samples = [10, 20, 30, 40, 50, 50]

    /// Client k's update: a task adapter [k, 2k] in its task's slot, and a LoRA vector of 3 values.
    static func update(_ k: Int) -> ClientUpdate {
        let lora: [Float] = [Float(k) * 0.37 + 0.1, -Float(k) / 7, 1 / Float(k + 3)]
        return ClientUpdate(client: k, examples: samples[k],
                            tensors: try! NamedTensors(names: ["connector/task_adapters/\(tasks[k])/w", "lm/lora_a"], counts: [2, 3],
                                                       values: [Float(k), Float(2 * k)] + lora))
    }

    /// Runs one Pilot exchange on `size` ranks (clients spread by `Placement`); returns what each client got.
    static func pilotRound(size: Int, participants: Set<Int>? = nil) throws -> [Int: ClientResult] {
        let out = try InProcessCommunicator.run(size: size) { world -> [Int: ClientResult] in
            let placement = try Placement(clients: 6, worldSize: size)
            let mine = placement.clients(onRank: world.rank)
            let fed = try Federation(world: world, clientTasks: tasks, numTasks: 3, placement: placement, localSamples: mine.map { samples[$0] })
            #expect(fed.clientSamples == samples)
            let strategy = PilotStrategy(settings: .init())
            let updates = mine.filter { participants?.contains($0) ?? true }.map(update)
            let exchange = try RoundExchange.run(updates, federation: fed) { all in
                #expect(all.map(\.client) == all.map(\.client).sorted(), "the server sees the updates in client order")
                return try strategy.aggregate(round: 2, updates: all, serverState: [:], roster: fed.roster)
            }
            #expect((exchange.serverState != nil) == (world.rank == 0))
            var got: [Int: ClientResult] = [:]
            for c in mine { got[c] = ClientResult(shared: exchange.shared, personal: exchange.personal[c]) }
            return got
        }
        return out.reduce(into: [:]) { acc, part in acc.merge(part) { a, _ in a } }
    }

    @Test("Eq. 10 through the exchange: n_k-weighted task means reach every client, each its own ATA LoRA")
    func taskMeans() throws {
        let got = try Self.pilotRound(size: 7)
        // Task 0: clients 0 (n=10) and 2 (n=30): (10·0 + 30·2)/40 = 1.5 → [1.5, 3]
        // Task 1: clients 1 (20) and 3 (40): (20·1 + 40·3)/60 = 7/3 → [2.333…, 4.666…]
        // Task 2: clients 4, 5 (50 each): 4.5 → [4.5, 9]
        let expected: [[Float]] = [[1.5, 3], [Float(140.0 / 60), Float(280.0 / 60)], [4.5, 9]]
        for k in 0..<6 {
            let shared = try #require(got[k]?.shared)
            for t in 0..<3 { #expect(shared["connector/task_adapters/\(t)/w"].map(Array.init) == expected[t], "client \(k), task \(t)") }
            #expect(try #require(got[k]?.personal).names == ["lm/lora_a"])
        }
    }

    @Test("the same bits on every world size: 6 clients on 1, 2, 3 or 6 client ranks")
    func placementIndependent() throws {
        let reference = try Self.pilotRound(size: 7)
        for size in [2, 3, 4] {
            let got = try Self.pilotRound(size: size)
            for k in 0..<6 {
                #expect(got[k]?.shared?.values.map(\.bitPattern) == reference[k]?.shared?.values.map(\.bitPattern), "size \(size) client \(k)")
                #expect(got[k]?.personal?.values.map(\.bitPattern) == reference[k]?.personal?.values.map(\.bitPattern), "size \(size) client \(k)")
            }
        }
    }

    @Test("a sample: only participants get a personal result; everyone gets the shared one")
    func sampled() throws {
        let got = try Self.pilotRound(size: 3, participants: [1, 4])
        for k in 0..<6 {
            #expect(got[k]?.shared != nil)
            #expect((got[k]?.personal != nil) == [1, 4].contains(k), "client \(k)")
        }
    }

    @Test("placement: contiguous blocks, as even as the world size allows; fixed blocks must divide K and fit -np")
    func placement() throws {
        let p = try Placement(clients: 9, worldSize: 5)
        #expect((1...4).map { p.clients(onRank: $0) } == [0..<3, 3..<5, 5..<7, 7..<9])
        #expect(p.clients(onRank: 0).isEmpty)
        #expect((0..<9).map(p.rank(of:)) == [1, 1, 1, 2, 2, 3, 3, 4, 4])
        #expect(p.label(2) == "rank 2 (clients 3–4)" && p.label(0) == "rank 0 (server)")
        #expect(try Placement(clients: 9, worldSize: 10).label(3) == "rank 3 (client 2)")
        #expect(try Placement(clients: 9, worldSize: 4, clientsPerRank: 3).clients(onRank: 3) == 6..<9)
        func message(_ body: () throws -> Placement) -> String {
            do { _ = try body(); return "" } catch { return "\(error)" }
        }
        #expect(message { try Placement(clients: 9, worldSize: 4, clientsPerRank: 2) }.contains("does not divide"))
        #expect(message { try Placement(clients: 9, worldSize: 5, clientsPerRank: 3) }.contains("-np 4"))
        #expect(message { try Placement(clients: 9, worldSize: 11) }.contains("at most -np 10"))
        #expect(message { try Placement(clients: 9, worldSize: 1) }.contains("-np 2"))
    }

    @Test("sampling: seeded by (seed, round), in client order, max(⌊fraction·K⌋, min_clients); zero is refused")
    func sampling() throws {
        let s = ClientSampling(fraction: 0.1, minClients: 0, seed: 7)
        let a = s.sample(round: 3, clients: 900), b = s.sample(round: 3, clients: 900)
        #expect(a == b && a.count == 90 && a == a.sorted() && Set(a).count == 90)
        #expect(s.sample(round: 4, clients: 900) != a)
        #expect(ClientSampling(fraction: 0.1, minClients: 0, seed: 8).sample(round: 3, clients: 900) != a)
        #expect(ClientSampling(fraction: 0.1, minClients: 5, seed: 7).sample(round: 1, clients: 9).count == 5)
        #expect(ClientSampling.everyone.sample(round: 1, clients: 9) == Array(0..<9))
        #expect(throws: PilotError.self) { try ClientSampling(fraction: 0.05, minClients: 0).validate(clients: 9) }
        // uniform enough: over 200 rounds every client of 20 is drawn about 200·5/20 = 50 times
        var counts = [Int](repeating: 0, count: 20)
        for r in 1...200 { for c in ClientSampling(fraction: 0.25, seed: 1).sample(round: r, clients: 20) { counts[c] += 1 } }
        #expect(counts.allSatisfy { $0 > 25 && $0 < 75 }, "\(counts)")
    }

    @Test("a world size that does not fit the placement is refused")
    func wrongWorldSize() throws {
        #expect(throws: PilotError.self) {
            _ = try InProcessCommunicator.run(size: 3) { world -> Int in
                _ = try Federation(world: world, clientTasks: [0, 1, 2], numTasks: 3, placement: try Placement(clients: 3, worldSize: 4), localSamples: [1])
                return 0
            }
        }
    }
}
