import PilotComm
import PilotCore
import PilotFederation
import Testing

/// The strategies' communication building blocks, on an in-process world of 1 server + 6
/// clients (tasks 0, 1, 0, 1, 2, 2), checked against hand-computed values.
@Suite("federation collectives (in-process)")
struct FederationCollectivesTests {
    static let tasks = [0, 1, 0, 1, 2, 2]
    static let samples = [10, 20, 30, 40, 50, 50]

    @Test("task-aware aggregation: n_k-weighted mean per task, all T means on every rank (Eq. 10)")
    func taskMeans() throws {
        let out = try InProcessCommunicator.run(size: 7) { world -> [[Float]] in
            let k = world.rank - 1
            let fed = try Federation(world: world, clientTasks: Self.tasks, numTasks: 3, localSamples: world.rank == 0 ? 0 : Self.samples[k])
            #expect(fed.clientSamples == Self.samples)
            var mean: [Float]? = nil
            if let c = fed.client {
                // Client k's task adapter: [k, 2k].
                mean = try fed.taskMean([Float(c), Float(2 * c)], samples: Self.samples[c])
            }
            return try fed.shareTaskMeans(mean)
        }
        // Task 0: clients 0 (n=10) and 2 (n=30): (10·0 + 30·2)/40 = 1.5 → [1.5, 3]
        // Task 1: clients 1 (20) and 3 (40): (20·1 + 40·3)/60 = 7/3 → [2.333…, 4.666…]
        // Task 2: clients 4, 5 (50 each): 4.5 → [4.5, 9]
        let expected: [[Float]] = [[1.5, 3], [Float(140.0 / 60), Float(280.0 / 60)], [4.5, 9]]
        for r in 0..<7 { #expect(out[r] == expected, "rank \(r): \(out[r])") }
    }

    @Test("gather-mix-scatter: each client gets its own row of the server's mix; the server gets nothing")
    func gatherMixScatter() throws {
        let out = try InProcessCommunicator.run(size: 7) { world -> [Float]? in
            let fed = try Federation(world: world, clientTasks: Self.tasks, numTasks: 3, localSamples: world.rank == 0 ? 0 : Self.samples[world.rank - 1])
            let mine: [Float]? = fed.client.map { [Float($0), 1] }
            return try fed.gatherMixScatter(mine) { vectors in
                // Reverse the order and add the client count: client k receives [5 − k + 6, 7].
                vectors.reversed().map { [$0[0] + 6, $0[1] + 6] }
            }
        }
        #expect(out[0] == nil)
        for k in 0..<6 { #expect(out[k + 1] == [Float(5 - k + 6), 7]) }
    }

    @Test("bytes moved are counted per rank")
    func bytesCounted() throws {
        let out = try InProcessCommunicator.run(size: 3) { world -> (Int64, Int64) in
            let fed = try Federation(world: world, clientTasks: [0, 0], numTasks: 1, localSamples: 5)
            _ = try fed.gatherReduceBroadcast(fed.client.map { _ in [Float](repeating: 1, count: 100) }) { v in v[0] }
            return (fed.world.bytesSent, fed.world.bytesReceived)
        }
        // Clients send 400 bytes each (gatherv) and receive the 100-float broadcast (+ its length).
        #expect(out[1].0 == 400 && out[2].0 == 400)
        #expect(out[0].1 == 800)
        #expect(out[1].1 == 400 + 8)
    }

    @Test("a world size that is not 1 + clients is refused with a message that says what to run")
    func wrongWorldSize() throws {
        #expect(throws: PilotError.self) {
            _ = try InProcessCommunicator.run(size: 3) { world -> Int in
                _ = try Federation(world: world, clientTasks: [0, 1, 2], numTasks: 3, localSamples: 1)
                return 0
            }
        }
    }
}
