import Dispatch
import PilotComm
import PilotCore
import PilotTensor

extension DistributedATA {
    /// One column block [start, start + len) of every client's vector on every client rank: what each
    /// rank sent (its clients' slices, concatenated in client order), by world rank. The server sends
    /// and receives nothing.
    struct BlockRows {
        let chunks: [[Float]]
        let owned: [Range<Int>]
        let len: Int
        /// Calls `body` with client j's slice.
        func withRow<R>(_ j: Int, owner: Int, _ body: (UnsafePointer<Float>) throws -> R) rethrows -> R {
            try chunks[owner].withUnsafeBufferPointer { try body($0.baseAddress! + (j - owned[owner].lowerBound) * len) }
        }
    }

    static func exchangeBlock(world: any Communicator, owned: [Range<Int>], mine: [[Float]], start: Int, len: Int) throws -> BlockRows {
        var slices: [Float] = []
        if !mine.isEmpty {
            slices.reserveCapacity(mine.count * len)
            for v in mine { slices.append(contentsOf: v[start..<(start + len)]) }
        }
        let chunks = (0..<world.size).map { r in r == world.rank || owned[r].isEmpty || mine.isEmpty ? [Float]() : slices }
        var got = try world.alltoallv(chunks)
        got[world.rank] = slices
        return BlockRows(chunks: got, owned: owned, len: len)
    }

    /// Collective: the server gathers every client rank's squared distances (its clients' halves, in
    /// client order), builds the K×K matrix of distances and the mixing matrix, and broadcasts each
    /// row's nonzeros; every rank returns them.
    static func mixingMatrix(world: any Communicator, d2: [Double], owned: [Range<Int>], samples: [Int], tasks: [Int],
                             selection: ATASelection, m: Int, normalisation: ATANormalisation) throws -> [[(client: Int, weight: Double)]] {
        let k = samples.count
        let parts = try world.gatherv(d2, root: 0)
        var flat: [Double] = []
        if world.rank == 0 {
            var dist = [Double](repeating: 0, count: k * k)
            for (r, part) in parts.enumerated() {
                var at = 0
                for i in owned[r] {
                    for j in half(of: i, clients: k) {
                        let d = max(part[at], 0).squareRoot()
                        dist[i * k + j] = d; dist[j * k + i] = d
                        at += 1
                    }
                }
            }
            let matrix = try Aggregate.ataMixingMatrix(distances: dist, samples: samples, tasks: tasks, selection: selection,
                                                       m: m, normalisation: normalisation)
            for row in matrix {
                let nz = row.enumerated().filter { $0.element != 0 }
                flat.append(Double(nz.count))
                for (j, c) in nz { flat.append(Double(j)); flat.append(c) }
            }
        }
        flat = try world.broadcastSized(flat, root: 0)
        var rows: [[(client: Int, weight: Double)]] = []
        var at = 0
        for _ in 0..<k {
            let n = Int(flat[at]); at += 1
            rows.append((0..<n).map { e in (Int(flat[at + 2 * e]), flat[at + 2 * e + 1]) })
            at += 2 * n
        }
        return rows
    }

    /// Collective: each client rank replaces its clients' vectors by their mixes, block by block. Per
    /// block, rank s sends rank r the slices of s's clients that r's clients have as neighbours (ascending
    /// client order); r then mixes each of its clients in ascending neighbour order, as `Aggregate.mix`.
    static func mix(world: any Communicator, owned: [Range<Int>], owner: [Int], mine: inout [[Float]], length p: Int,
                    neighbours: [[(client: Int, weight: Double)]], block: Int) throws {
        // needs[r]: the clients held elsewhere that rank r's clients mix in, ascending
        let needs: [[Int]] = owned.map { range in
            Set(range.flatMap { neighbours[$0].map(\.client) }).filter { !range.contains($0) }.sorted()
        }
        let mineRange = owned[world.rank]
        var start = 0
        while start < p {
            let len = min(block, p - start)
            let chunks: [[Float]] = (0..<world.size).map { r in
                guard r != world.rank else { return [] }
                var out: [Float] = []
                for j in needs[r] where owner[j] == world.rank {
                    out.append(contentsOf: mine[j - mineRange.lowerBound][start..<(start + len)])
                }
                return out
            }
            let got = try world.alltoallv(chunks)
            // where client j's slice is: (rank, offset) in `got`, or this rank's own vector
            var position: [Int: (rank: Int, offset: Int)] = [:]
            for r in 0..<world.size where r != world.rank {
                let theirs = needs[world.rank].filter { owner[$0] == r }
                for (n, j) in theirs.enumerated() { position[j] = (r, n * len) }
            }
            var mixed = [[Float]](repeating: [], count: mine.count)
            for (slot, i) in mineRange.enumerated() {
                var acc = [Double](repeating: 0, count: len)
                for (j, c) in neighbours[i] {
                    if owner[j] == world.rank {
                        mine[j - mineRange.lowerBound].withUnsafeBufferPointer { v in
                            for q in 0..<len { acc[q] += c * Double(v[start + q]) }
                        }
                    } else {
                        let (r, off) = position[j]!
                        got[r].withUnsafeBufferPointer { v in
                            for q in 0..<len { acc[q] += c * Double(v[off + q]) }
                        }
                    }
                }
                mixed[slot] = acc.map { Float($0) }
            }
            for slot in mixed.indices { mine[slot].replaceSubrange(start..<(start + len), with: mixed[slot]) }
            start += len
        }
    }

    /// Seconds since the last lap.
    final class Clock {
        var last = DispatchTime.now().uptimeNanoseconds
        func lap() -> Double {
            let now = DispatchTime.now().uptimeNanoseconds
            defer { last = now }
            return Double(now - last) / 1e9
        }
    }
}

