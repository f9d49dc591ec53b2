import PilotCore
import PilotFederation
import Testing

@Suite("aggregation math")
struct AggregateTests {
    @Test("weighted mean by hand")
    func weightedMean() throws {
        // (2·[1, 2] + 1·[4, -1]) / 3 = [2, 1]
        #expect(try Aggregate.weightedMean([[1, 2], [4, -1]], weights: [2, 1]) == [2, 1])
        #expect(try Aggregate.weightedMean([[0.5]], weights: [7]) == [0.5])
        #expect(throws: PilotError.self) { _ = try Aggregate.weightedMean([[1, 2], [1]], weights: [1, 1]) }
        #expect(throws: PilotError.self) { _ = try Aggregate.weightedMean([[1]], weights: [0]) }
        #expect(throws: PilotError.self) { _ = try Aggregate.weightedMean([], weights: []) }
    }

    /// The plain O(K²·P) definition that the Gram version is checked against.
    static func naiveDistances(_ x: [[Float]]) -> [Double] {
        let k = x.count
        var d = [Double](repeating: 0, count: k * k)
        for i in 0..<k { for j in 0..<k {
            var s = 0.0
            for q in x[i].indices { let t = Double(x[i][q]) - Double(x[j][q]); s += t * t }
            d[i * k + j] = s.squareRoot()
        } }
        return d
    }

    static func vectors(k: Int, p: Int, seed: UInt64) -> [[Float]] {
        var s = seed
        func next() -> Float {
            s = s &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int64(bitPattern: s >> 11) % 2000) / 1000 - 1
        }
        return (0..<k).map { _ in (0..<p).map { _ in next() } }
    }

    @Test("Gram-matrix distances match the O(K²·P) definition, including a duplicated client")
    func distances() {
        var x = Self.vectors(k: 6, p: 3000, seed: 7)
        x[4] = x[1]  // duplicated client
        x[5] = x[2].map { $0 + 1e-4 }  // a near-duplicate, where the Gram form cancels badly
        let gram = Aggregate.pairwiseDistances(x.flatMap { $0 }, clients: 6, length: 3000)
        let naive = Self.naiveDistances(x)
        for i in 0..<36 {
            #expect(abs(gram[i] - naive[i]) <= 1e-5 * max(1, naive[i]), "pair \(i / 6),\(i % 6): \(gram[i]) vs \(naive[i])")
        }
        #expect(gram[1 * 6 + 4] == 0 && gram[4 * 6 + 1] == 0)
        #expect(gram[2 * 6 + 5] > 0)
    }

    @Test("inverse-distance weights by hand, and the d → 0 limit")
    func inverseDistance() {
        // 1/1 : 1/2 : 1/4 = 4 : 2 : 1
        let w = Aggregate.inverseDistanceWeights([1, 2, 4])
        #expect(zip(w, [4.0 / 7, 2.0 / 7, 1.0 / 7]).allSatisfy { abs($0 - $1) < 1e-15 })
        #expect(Aggregate.inverseDistanceWeights([3, 0, 5, 0]) == [0, 0.5, 0, 0.5])
        #expect(Aggregate.inverseDistanceWeights([]) == [])
    }

    @Test("ATA mixing matrix by hand: top-M, ties to the lower index, both normalisations")
    func mixingByHand() throws {
        // 4 clients on a line at 0, 1, 3, 4 (distances |i - j|); n = [10, 20, 30, 40].
        let pos: [Double] = [0, 1, 3, 4]
        let d = (0..<16).map { abs(pos[$0 / 4] - pos[$0 % 4]) }
        let n = [10, 20, 30, 40]
        let m = try Aggregate.ataMixingMatrix(distances: d, samples: n, tasks: [0, 0, 1, 1], selection: .topM, m: 2, normalisation: .normalised)
        // Client 0: neighbours 1 (d=1), 2 (d=3): w = [3/4, 1/4]; Z = 10 + 20·3/4 + 30·1/4 = 32.5
        #expect(abs(m[0][0] - 10 / 32.5) < 1e-15)
        #expect(abs(m[0][1] - 15 / 32.5) < 1e-15)
        #expect(abs(m[0][2] - 7.5 / 32.5) < 1e-15)
        #expect(m[0][3] == 0)
        // Client 1: distances to 0, 2, 3 are 1, 2, 3 → neighbours 0, 2; w = [2/3, 1/3].
        #expect(m[1][3] == 0 && m[1][0] > 0 && m[1][2] > 0)
        for row in m { #expect(abs(row.reduce(0, +) - 1) < 1e-12) }

        let lit = try Aggregate.ataMixingMatrix(distances: d, samples: n, tasks: [0, 0, 1, 1], selection: .topM, m: 2, normalisation: .paperLiteral)
        // Client 0, paper's Z = 10 + 20 + 30 = 60.
        #expect(abs(lit[0][0] - 10.0 / 60) < 1e-15 && abs(lit[0][1] - 15.0 / 60) < 1e-15 && abs(lit[0][2] - 7.5 / 60) < 1e-15)
        #expect(lit[0].reduce(0, +) < 1)

        // Ties: client 1 at equal distance 1 from clients 0 and 2 (positions 0, 1, 2); M = 1 takes client 0.
        let tied = (0..<9).map { abs(Double($0 / 3) - Double($0 % 3)) }
        let t = try Aggregate.ataMixingMatrix(distances: tied, samples: [1, 1, 1], tasks: [0, 0, 0], selection: .topM, m: 1, normalisation: .normalised)
        #expect(t[1][0] == 0.5 && t[1][2] == 0 && t[1][1] == 0.5)
    }

    @Test("selection: same task only, and all clients without a top-M cut")
    func selections() throws {
        let pos: [Double] = [0, 1, 3, 4]
        let d = (0..<16).map { abs(pos[$0 / 4] - pos[$0 % 4]) }
        let same = try Aggregate.ataMixingMatrix(distances: d, samples: [1, 1, 1, 1], tasks: [0, 1, 0, 1], selection: .sameTask, m: 0, normalisation: .normalised)
        #expect(same[0][1] == 0 && same[0][3] == 0 && same[0][2] == 0.5 && same[0][0] == 0.5)
        let all = try Aggregate.ataMixingMatrix(distances: d, samples: [1, 1, 1, 1], tasks: [0, 1, 0, 1], selection: .allClients, m: 0, normalisation: .normalised)
        #expect(all[0].allSatisfy { $0 > 0 })
        // Weights 1 : 1/3 : 1/4 over clients 1, 2, 3 → [12, 4, 3]/19; with n = 1, Z = 2.
        #expect(abs(all[0][1] - 12.0 / 19 / 2) < 1e-15)
    }

    @Test("a duplicated client takes the whole neighbour weight")
    func duplicate() throws {
        let x: [[Float]] = [[0, 0], [3, 4], [0, 0], [6, 8]]
        let d = Aggregate.pairwiseDistances(x.flatMap { $0 }, clients: 4, length: 2)
        #expect(d[0 * 4 + 2] == 0 && d[0 * 4 + 1] == 5)
        let m = try Aggregate.ataMixingMatrix(distances: d, samples: [1, 1, 1, 1], tasks: [0, 0, 0, 0], selection: .topM, m: 2, normalisation: .normalised)
        #expect(m[0] == [0.5, 0, 0.5, 0])
        let mixed = Aggregate.mix(x, matrix: m)
        #expect(mixed[0] == [0, 0])
        // Client 1: neighbours 0 and 2 (both d = 5, both before 3 at d = 5): weights 1/2 each.
        #expect(mixed[1] == [1.5, 2])
    }
}
