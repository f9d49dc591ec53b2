import Foundation
import PilotCore
import PilotFederation
import PilotTestSupport
import Testing

/// RobustAggregator against Flower 1.41 itself.
///
/// Golden values: Tests/Fixtures/federation/robust_golden.json, written by
/// Tests/Fixtures/federation/make_robust_golden.py, which runs Flower's FedMedian, FedTrimmedAvg and Krum
/// (Multi-Krum) `aggregate_fit` on each input set twice: on float32 inputs (Flower then computes
/// in float32) and on the same values as float64. The Swift rules accumulate in Double, so they
/// sit within one float32 rounding of the float64 run and within Flower's float32 rounding of the
/// float32 run; both are held to 1e-6 relative.
@Suite("robust aggregation (Flower's median, trimmed mean, Krum)")
struct RobustAggregateTests {
    struct Flower: Decodable {
        var median: [Double]
        var trimmed_mean: [Double]
        var krum: [Double]
        var krum_used: [Int]
        var multikrum: [Double]
        var multikrum_used: [Int]
        var krum_scores: [Double]
    }
    struct InputSet: Decodable {
        var name: String
        var clients: [[Float]]
        var samples: [Int]
        var f: Int
        var m: Int
        var beta: Double
        var flower_float32: Flower
        var flower_float64: Flower
    }
    struct Golden: Decodable {
        var flwr_version: String
        var sets: [InputSet]
    }

    static let golden: Golden = {
        let url = URL(fileURLWithPath: repositoryRoot + "/Tests/Fixtures/federation/robust_golden.json")
        return try! JSONDecoder().decode(Golden.self, from: Data(contentsOf: url))
    }()

    /// max |a − b| / |b| (|a| where b is 0).
    static func relativeError(_ a: [Double], _ b: [Double]) -> Double {
        precondition(a.count == b.count, "\(a.count) values vs \(b.count)")
        return zip(a, b).map { $1 == 0 ? abs($0) : abs($0 - $1) / abs($1) }.max() ?? 0
    }

    static let tolerance = 1e-6

    @Test("median, trimmed mean, Krum and Multi-Krum equal Flower's outputs and selections")
    func flowerGolden() throws {
        #expect(Self.golden.flwr_version == "1.41.0")
        var worst: [String: Double] = [:]
        for s in Self.golden.sets {
            let w = s.samples.map(Double.init)
            let rules: [(String, RobustAggregator, KeyPath<Flower, [Double]>, KeyPath<Flower, [Int]>?)] = [
                ("median", .median, \.median, nil),
                ("trimmed_mean", .trimmedMean(beta: s.beta), \.trimmed_mean, nil),
                ("krum", .krum(f: s.f), \.krum, \.krum_used),
                ("multikrum", .multiKrum(f: s.f, m: s.m), \.multikrum, \.multikrum_used),
            ]
            for (name, rule, values, used) in rules {
                let out = try rule.combine(s.clients, weights: w)
                let mine = out.values.map(Double.init)
                for (dtype, flower) in [("float32", s.flower_float32), ("float64", s.flower_float64)] {
                    let err = Self.relativeError(mine, flower[keyPath: values])
                    worst["\(name) vs Flower \(dtype)", default: 0] = max(worst["\(name) vs Flower \(dtype)", default: 0], err)
                    #expect(err <= Self.tolerance, "\(s.name) \(name) vs Flower \(dtype): relative error \(err)")
                    if let used {
                        #expect(out.used == flower[keyPath: used], "\(s.name) \(name): used \(out.used), Flower \(flower[keyPath: used])")
                    } else {
                        #expect(out.used == Array(s.clients.indices))
                    }
                }
            }
            // Krum returns the chosen client's vector itself
            let krum = try RobustAggregator.krum(f: s.f).combine(s.clients, weights: w)
            #expect(krum.values.map(\.bitPattern) == s.clients[krum.used[0]].map(\.bitPattern))
            let scores = try RobustAggregator.krumScores(s.clients, f: s.f)
            for (dtype, flower) in [("float32", s.flower_float32), ("float64", s.flower_float64)] {
                let err = Self.relativeError(scores, flower.krum_scores)
                worst["krum scores vs Flower \(dtype)", default: 0] = max(worst["krum scores vs Flower \(dtype)", default: 0], err)
                #expect(err <= Self.tolerance, "\(s.name) krum scores vs Flower \(dtype): relative error \(err)")
            }
        }
        for (k, v) in worst.sorted(by: { $0.key < $1.key }) { print("RobustAggregateTests max relative error, \(k): \(v)") }
    }

    @Test("ties: equal Krum scores go to the lower client index, as Flower's argmin and argsort do")
    func ties() throws {
        let s = try #require(Self.golden.sets.first { $0.name == "ties_6x3" })
        let scores = try RobustAggregator.krumScores(s.clients, f: s.f)
        #expect(scores[1] == scores[2] && scores[0] == scores[3])
        #expect(try RobustAggregator.krum(f: s.f).combine(s.clients, weights: s.samples.map(Double.init)).used == [1])
        #expect(try RobustAggregator.multiKrum(f: s.f, m: 3).combine(s.clients, weights: s.samples.map(Double.init)).used == [0, 1, 2])
    }

    @Test("mean is Aggregate.weightedMean, bit for bit; Multi-Krum with m = K is the weighted mean of all")
    func mean() throws {
        for s in Self.golden.sets {
            let w = s.samples.map(Double.init)
            let direct = try Aggregate.weightedMean(s.clients, weights: w)
            let out = try RobustAggregator.mean.combine(s.clients, weights: w)
            #expect(out.values.map(\.bitPattern) == direct.map(\.bitPattern))
            #expect(out.used == Array(s.clients.indices))
            let all = try RobustAggregator.multiKrum(f: s.f, m: s.clients.count).combine(s.clients, weights: w)
            #expect(all.values.map(\.bitPattern) == direct.map(\.bitPattern))
        }
    }

    @Test("bad inputs throw invalidArgument")
    func errors() {
        let five: [[Float]] = (0..<5).map { k in [Float(k), Float(k * k)] }
        let w5 = [Double](repeating: 1, count: 5)
        let cases: [(RobustAggregator, [[Float]], [Double])] = [
            (.median, [], []),                                   // no vectors
            (.mean, [], []),
            (.median, five, [1, 1]),                             // weights do not match
            (.median, five + [[1]], w5 + [1]),                   // length mismatch
            (.trimmedMean(beta: -0.1), five, w5),                // beta outside [0, 0.5)
            (.trimmedMean(beta: 0.5), five, w5),
            (.trimmedMean(beta: .nan), five, w5),
            (.krum(f: 3), five, w5),                             // 5 < f + 3 clients
            (.krum(f: -1), five, w5),
            (.multiKrum(f: 1, m: 6), five, w5),                  // m > K
            (.multiKrum(f: 1, m: 0), five, w5),
            (.multiKrum(f: 3, m: 2), five, w5),
        ]
        for (rule, vectors, weights) in cases {
            #expect(throws: PilotError.self, "\(rule) on \(vectors.count) vectors, \(weights.count) weights") {
                _ = try rule.combine(vectors, weights: weights)
            }
        }
        // the edge that still works: K = f + 3 (one neighbour per score)
        #expect(throws: Never.self) { _ = try RobustAggregator.krum(f: 2).combine(five, weights: w5) }
    }
}
