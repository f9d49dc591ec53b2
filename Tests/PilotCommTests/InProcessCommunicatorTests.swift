import PilotComm
import PilotCore
import Testing

/// The in-process communicator must behave like MPI for every operation the runtime uses.
/// The same operations run under mpirun in the integration tests (`pilot selftest`).
@Suite("in-process communicator")
struct InProcessCommunicatorTests {
    @Test("rank and size", arguments: [1, 2, 4, 7])
    func rankAndSize(n: Int) throws {
        let ids = try InProcessCommunicator.run(size: n) { c in [c.rank, c.size] }
        #expect(ids == (0..<n).map { [$0, n] })
    }

    @Test("allreduce sum is the rank-order left fold, in every element type")
    func allreduceSum() throws {
        // Values chosen so that float addition order matters: (1e8 + 1) - 1e8 != 1 in Float.
        let inputs: [[Float]] = [[1e8, 0.1, 3], [1, 0.2, -3], [-1e8, 0.3, 1e-7], [1, 0.4, 2]]
        let results = try InProcessCommunicator.run(size: 4) { c in
            var v = inputs[c.rank]
            try c.allreduce(&v, op: .sum)
            var d = inputs[c.rank].map(Double.init)
            try c.allreduce(&d, op: .sum)
            var i = [Int64(c.rank + 1), Int64(-c.rank)]
            try c.allreduce(&i, op: .sum)
            return (v, d, i)
        }
        var fold = inputs[0]
        for r in 1..<4 { for j in 0..<3 { fold[j] = fold[j] + inputs[r][j] } }
        for (v, _, i) in results {
            #expect(v == fold)
            #expect(i == [10, -6])
        }
        let doubles = results[0].1
        var dfold = inputs[0].map(Double.init)
        for r in 1..<4 { for j in 0..<3 { dfold[j] += Double(inputs[r][j]) } }
        #expect(doubles == dfold)
    }

    @Test("allreduce max")
    func allreduceMax() throws {
        let out = try InProcessCommunicator.run(size: 3) { c in
            try c.allreduce(scalar: Double(c.rank * 7 % 5), op: .max)
        }
        #expect(out == [4, 4, 4])
    }

    @Test("split by colour; nil colour means not a member; key orders the new ranks")
    func split() throws {
        // World of 7: rank 0 is the server (no task), clients 1...6 have tasks (r-1) % 3.
        let out = try InProcessCommunicator.run(size: 7) { c -> [Int] in
            let color: Int? = c.rank == 0 ? nil : (c.rank - 1) % 3
            let task = try c.split(color: color, key: c.rank, name: "task")
            var v = [Int64(c.rank)]
            try task?.allreduce(&v, op: .sum)
            // Reverse key order inside a second split; every rank of the parent must take part.
            let rev = try #require(try c.split(color: 0, key: -c.rank, name: "rev"))
            guard let task else { return [-1, rev.rank] }
            return [task.rank, task.size, Int(v[0]), rev.rank]
        }
        #expect(out[0] == [-1, 6])
        // Task 0 = ranks 1,4; task 1 = ranks 2,5; task 2 = ranks 3,6.
        #expect(out[1] == [0, 2, 5, 5]); #expect(out[4] == [1, 2, 5, 2])
        #expect(out[2] == [0, 2, 7, 4]); #expect(out[5] == [1, 2, 7, 1])
        #expect(out[3] == [0, 2, 9, 3]); #expect(out[6] == [1, 2, 9, 0])
    }

    @Test("broadcast of arrays, strings and scalars from any root")
    func broadcast() throws {
        let out = try InProcessCommunicator.run(size: 3) { c in
            var v: [Float] = c.rank == 2 ? [1, 2, 3] : [0, 0, 0]
            try c.broadcast(&v, root: 2)
            let s = try c.broadcast(string: c.rank == 0 ? "config = ✓" : "", root: 0)
            let n = try c.broadcast(scalar: Int64(c.rank == 1 ? 99 : 0), root: 1)
            return "\(v) \(s) \(n)"
        }
        #expect(out == Array(repeating: "[1.0, 2.0, 3.0] config = ✓ 99", count: 3))
    }

    @Test("gather, gatherv, allgather and allgatherv")
    func gathers() throws {
        let out = try InProcessCommunicator.run(size: 3) { c in
            let mine = [Float](repeating: Float(c.rank), count: c.rank + 1)
            let gv = try c.gatherv(mine, root: 1)
            let g = try c.gather([Int64(c.rank), Int64(10 * c.rank)], root: 0)
            let agv = try c.allgatherv(mine)
            let ag = try c.allgather([Double(c.rank)])
            return (gv, g, agv, ag)
        }
        #expect(out[1].0 == [[0], [1, 1], [2, 2, 2]])
        #expect(out[0].0.isEmpty && out[2].0.isEmpty)
        #expect(out[0].1 == [0, 0, 1, 10, 2, 20])
        #expect(out[2].1 == [])
        for r in 0..<3 {
            #expect(out[r].2 == [[0], [1, 1], [2, 2, 2]])
            #expect(out[r].3 == [0, 1, 2])
        }
    }

    @Test("scatterv sends each rank its own chunk")
    func scatterv() throws {
        let out = try InProcessCommunicator.run(size: 4) { c in
            let chunks: [[Float]] = c.rank == 0 ? [[], [1], [2, 2], [3, 3, 3]] : []
            return try c.scatterv(chunks, root: 0)
        }
        #expect(out == [[], [1], [2, 2], [3, 3, 3]])
    }

    @Test("an error on one rank releases the others and names the failing rank")
    func failurePropagates() throws {
        do {
            _ = try InProcessCommunicator.run(size: 4) { c -> Int in
                if c.rank == 2 { throw PilotError.message("client 2 could not read its shard") }
                try c.barrier()
                var v: [Float] = [1]
                try c.allreduce(&v, op: .sum)
                return 0
            }
            Issue.record("run did not throw")
        } catch let error as PilotError {
            #expect(error == .message("client 2 could not read its shard"))
        }
        // The other ranks saw .aborted naming rank 2.
        let seen = Box()
        _ = try? InProcessCommunicator.run(size: 3) { c -> Int in
            if c.rank == 0 { throw PilotError.message("server failed") }
            do { try c.barrier() } catch { seen.append("\(error)") }
            return 0
        }
        #expect(seen.values.count == 2)
        #expect(seen.values.allSatisfy { $0.contains("rank 0: server failed") && $0.contains("barrier") })
    }

    @Test("a rank that skips a collective is named instead of hanging the others")
    func skippedCollective() throws {
        do {
            _ = try InProcessCommunicator.run(size: 3) { c -> Int in
                if c.rank != 1 { try c.barrier() }
                return c.rank
            }
            Issue.record("run did not throw")
        } catch let PilotError.aborted(op, _, cause) {
            #expect(op.contains("barrier"))
            #expect(cause.contains("rank 1 returned"))
        }
    }

    @Test("mismatched collectives throw instead of mixing data")
    func mismatch() throws {
        #expect(throws: PilotError.self) {
            _ = try InProcessCommunicator.run(size: 2) { c -> Int in
                if c.rank == 0 { try c.barrier() } else { var v: [Float] = [1]; try c.allreduce(&v, op: .sum) }
                return 0
            }
        }
    }

    @Test("reduceInRankOrder is a left fold in rank order")
    func reduceOrder() {
        let a: [Float] = [1e8], b: [Float] = [1], c: [Float] = [-1e8]
        var out: [Float] = [0]
        a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in c.withUnsafeBufferPointer { pc in
            out.withUnsafeMutableBufferPointer { reduceInRankOrder([pa, pb, pc], op: .sum, into: $0) }
        } } }
        #expect(out == [(Float(1e8) + 1) - 1e8])
        #expect(out == [0])  // 1e8 + 1 rounds to 1e8 in float32, so the order is visible
    }
}

final class Box: @unchecked Sendable {
    private let lock = NSLockLike()
    private(set) var values: [String] = []
    func append(_ s: String) { lock.sync { values.append(s) } }
}

import Foundation
final class NSLockLike: @unchecked Sendable {
    let l = NSLock()
    func sync(_ f: () -> Void) { l.lock(); f(); l.unlock() }
}

@Suite("ranks by node")
struct NodeSplitTests {
    @Test("splitByNode: every rank of one host lands in one group, ordered by rank")
    func oneHost() throws {
        let sizes = try InProcessCommunicator.run(size: 3) { comm -> [Int] in
            let node = try comm.splitByNode()
            return [node.size, node.rank]
        }
        #expect(sizes == [[3, 0], [3, 1], [3, 2]])
    }
}
