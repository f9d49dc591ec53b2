import PilotComm
import PilotCore
import PilotData
@testable import PilotFederation
import Testing

/// ATA across ranks (`DistributedATA`) on InProcessCommunicator worlds: the same bits on every world
/// size and placement, the mix equal bit for bit to `Aggregate.mix` with the same matrix, and the
/// neighbours and weights of the gathering path (`Aggregate.pairwiseDistances`).
@Suite("DistributedATA")
struct DistributedATATests {
    static func vectors(k: Int, p: Int) -> [[Float]] {
        var rng = PilotRNG(seed: 11)
        return (0..<k).map { _ in (0..<p).map { _ in Float(rng.int(2_000_001) - 1_000_000) * 1e-6 } }
    }

    /// Clients split into `ranks − 1` contiguous ranges (rank 0 holds none), `sizes` giving their lengths.
    static func owned(_ sizes: [Int]) -> [Range<Int>] {
        var out: [Range<Int>] = [0..<0], at = 0
        for s in sizes { out.append(at..<(at + s)); at += s }
        return out
    }

    static func run(_ all: [[Float]], sizes: [Int], block: Int, tasks: [Int], samples: [Int]) throws -> (mixed: [[Float]], rows: [[(client: Int, weight: Double)]]) {
        let owned = Self.owned(sizes)
        let p = all[0].count
        let results = try InProcessCommunicator.run(size: owned.count) { comm -> [[Float]] in
            var mine = Array(all[owned[comm.rank]])
            let r = try DistributedATA.run(world: comm, owned: owned, mine: &mine, length: p, samples: samples, tasks: tasks,
                                           selection: .topM, m: 3, normalisation: .normalised, block: block)
            return comm.rank == 0 ? r.neighbours.map { row in row.flatMap { [Float($0.client), Float($0.weight)] } } : mine
        }
        let rows = try InProcessCommunicator.run(size: owned.count) { comm -> [[Double]] in
            var mine = Array(all[owned[comm.rank]])
            let r = try DistributedATA.run(world: comm, owned: owned, mine: &mine, length: p, samples: samples, tasks: tasks,
                                           selection: .topM, m: 3, normalisation: .normalised, block: block)
            return r.neighbours.map { row in row.flatMap { [Double($0.client), $0.weight] } }
        }[0]
        return (results.dropFirst().flatMap { $0 }, rows.map { r in stride(from: 0, to: r.count, by: 2).map { (Int(r[$0]), r[$0 + 1]) } })
    }

    @Test("the halves cover every pair once", arguments: [2, 3, 7, 8, 9])
    func halves(k: Int) {
        var seen = Set<[Int]>()
        for i in 0..<k {
            for (n, j) in DistributedATA.half(of: i, clients: k).enumerated() {
                #expect(DistributedATA.halfIndex(of: j, from: i, clients: k) == n)
                #expect(seen.insert([min(i, j), max(i, j)]).inserted, "pair \(i), \(j) twice")
            }
        }
        #expect(seen.count == k * (k - 1) / 2)
    }

    @Test("same bits on 2, 3 and 5 ranks and uneven placements; the mix equals Aggregate.mix; neighbours as the gathering path")
    func placements() throws {
        let k = 9, p = 300
        let all = Self.vectors(k: k, p: p)
        let tasks = (0..<k).map { $0 % 3 }, samples = (0..<k).map { 5 + 3 * $0 }
        let a = try Self.run(all, sizes: [9], block: 64, tasks: tasks, samples: samples)
        for sizes in [[5, 4], [2, 2, 2, 3], [1, 4, 1, 3]] {
            let b = try Self.run(all, sizes: sizes, block: 64, tasks: tasks, samples: samples)
            #expect(b.mixed.map { $0.map(\.bitPattern) } == a.mixed.map { $0.map(\.bitPattern) }, "placement \(sizes) differs")
        }
        // the mix is Aggregate.mix with the same matrix
        var matrix = [[Double]](repeating: [Double](repeating: 0, count: k), count: k)
        for (i, row) in a.rows.enumerated() { for (j, c) in row { matrix[i][j] = c } }
        let reference = Aggregate.mix(all, matrix: matrix)
        #expect(reference.map { $0.map(\.bitPattern) } == a.mixed.map { $0.map(\.bitPattern) })
        // the neighbours and weights of the gathering path
        let distances = Aggregate.pairwiseDistances(Aggregate.rows(all, length: p), clients: k, length: p)
        let gathered = try Aggregate.ataMixingMatrix(distances: distances, samples: samples, tasks: tasks, selection: .topM, m: 3,
                                                     normalisation: .normalised)
        for i in 0..<k {
            #expect(a.rows[i].map(\.client) == gathered[i].indices.filter { gathered[i][$0] != 0 }, "client \(i)'s neighbours")
            for (j, c) in a.rows[i] { #expect(abs(c - gathered[i][j]) <= 1e-6 * abs(gathered[i][j])) }
        }
    }

    @Test("one block or many: the same neighbours, mixes within float rounding")
    func blocks() throws {
        let k = 6, p = 130
        let all = Self.vectors(k: k, p: p)
        let tasks = (0..<k).map { $0 % 2 }, samples = [Int](repeating: 10, count: k)
        let one = try Self.run(all, sizes: [3, 3], block: 1_000, tasks: tasks, samples: samples)
        let many = try Self.run(all, sizes: [3, 3], block: 32, tasks: tasks, samples: samples)
        #expect(one.rows.map { $0.map(\.client) } == many.rows.map { $0.map(\.client) })
        for (x, y) in zip(one.mixed.joined(), many.mixed.joined()) { #expect(abs(x - y) <= 1e-5) }
    }
}
