import PilotCore

/// Byzantine-robust ways of combining client vectors, each equal to one of Flower 1.41's legacy
/// strategies (`flwr/server/strategy/aggregate.py`), so that a run can swap the n_k-weighted mean
/// for a rule that a few bad clients cannot drag arbitrarily far.
///
/// Flower computes in the clients' dtype (float32 here); these compute in Double and round once to
/// Float, so they agree with Flower on float32 inputs to float32 rounding (the tests hold them to
/// Flower's own outputs). Every sum runs in a fixed order, so results are bitwise reproducible.
/// Inputs are assumed finite: the round loop stops a run on a non-finite update before aggregation.
public enum RobustAggregator: Sendable, Equatable {
    /// The n_k-weighted mean (`Aggregate.weightedMean`), what every strategy does without a rule.
    case mean
    /// Flower's FedMedian: the coordinate-wise median, unweighted (`np.median(axis=0)`; for an
    /// even count, the mean of the two middle values).
    case median
    /// Flower's FedTrimmedAvg: per coordinate, sort the K values, drop `Int(beta·K)` from each end
    /// and average the rest, unweighted. `beta` lies in [0, 0.5).
    case trimmedMean(beta: Double)
    /// Flower's Krum with `num_malicious_clients = f`, `num_clients_to_keep = 0`: the one client
    /// with the lowest score (see `krumScores`), its vector unchanged.
    case krum(f: Int)
    /// Flower's Krum with `num_clients_to_keep = m`: the n_k-weighted mean of the m clients with
    /// the lowest scores.
    case multiKrum(f: Int, m: Int)

    /// Combines client vectors (client order) with their weights n_k. Returns the result and the
    /// indices of the clients it used, in client order: all of them for mean, median and trimmed
    /// mean, the selected ones for Krum and Multi-Krum. Median, trimmed mean and the Krum
    /// selection ignore the weights (as Flower does), but there must be one per vector.
    public func combine(_ vectors: [[Float]], weights: [Double]) throws -> (values: [Float], used: [Int]) {
        guard let first = vectors.first else { throw PilotError.invalidArgument("\(self): no vectors") }
        guard weights.count == vectors.count else {
            throw PilotError.invalidArgument("\(self): \(vectors.count) vectors but \(weights.count) weights")
        }
        if let bad = vectors.firstIndex(where: { $0.count != first.count }) {
            throw PilotError.invalidArgument("\(self): vector \(bad) has \(vectors[bad].count) elements, vector 0 has \(first.count)")
        }
        let k = vectors.count, all = Array(0..<k)
        switch self {
        case .mean:
            return (try Aggregate.weightedMean(vectors, weights: weights), all)
        case .median:
            return (Self.perCoordinate(vectors) { s in
                k % 2 == 1 ? s[k / 2] : (s[k / 2 - 1] + s[k / 2]) / 2
            }, all)
        case .trimmedMean(let beta):
            guard beta >= 0, beta < 0.5 else {
                throw PilotError.invalidArgument("trimmed mean: beta must be in [0, 0.5), got \(beta)")
            }
            // Python's int() truncates toward zero, as Int() does; the product is the same IEEE one.
            let cut = Int(beta * Double(k))
            return (Self.perCoordinate(vectors) { s in
                var sum = 0.0
                for v in s[cut..<(k - cut)] { sum += v }
                return sum / Double(k - 2 * cut)
            }, all)
        case .krum(let f):
            let best = try Self.krumRanking(vectors, f: f)[0]
            return (vectors[best], [best])
        case .multiKrum(let f, let m):
            guard m >= 1, m <= k else {
                throw PilotError.invalidArgument("multi-krum: m must be in 1...\(k) (the number of clients), got \(m)")
            }
            let chosen = try Self.krumRanking(vectors, f: f).prefix(m).sorted()
            let mean = try Aggregate.weightedMean(chosen.map { vectors[$0] }, weights: chosen.map { weights[$0] })
            return (mean, chosen)
        }
    }
}

extension RobustAggregator {
    /// The fewest updates the rule can combine: f + 3 for Krum (a score needs n − f − 2 ≥ 1
    /// neighbours), max(f + 3, m) for multi-Krum, 1 for the others (a trimmed mean with β < 0.5
    /// always keeps at least one value).
    public var minimumClients: Int {
        switch self {
        case .mean, .median, .trimmedMean: return 1
        case .krum(let f): return f + 3
        case .multiKrum(let f, let m): return max(f + 3, m)
        }
    }

    /// The rule that combines `count` updates: the rule itself when it can, else the coordinate-wise
    /// median (docs/robustness.md, "too few updates"): rejections or sampling left fewer updates in
    /// a group than Krum's f (or multi-Krum's m) needs, and the median is the robust rule that
    /// needs none, so the round goes on instead of aborting.
    public func applicable(to count: Int) -> RobustAggregator {
        count >= minimumClients ? self : .median
    }

    /// The keys that set the rule's parameters, for messages.
    public var keys: String {
        switch self {
        case .mean, .median: return "robust.aggregator"
        case .trimmedMean: return "robust.aggregator, robust.trim"
        case .krum: return "robust.aggregator, robust.byzantine_f"
        case .multiKrum: return "robust.aggregator, robust.byzantine_f, robust.krum_m"
        }
    }

    /// The rule as a config names it, with its parameters ("krum with f = 0").
    public var label: String {
        switch self {
        case .mean: return "mean"
        case .median: return "median"
        case .trimmedMean(let beta): return "trimmed_mean with trim = \(beta)"
        case .krum(let f): return "krum with f = \(f)"
        case .multiKrum(let f, let m): return "multi_krum with f = \(f), m = \(m)"
        }
    }

    /// What the server logs when a group falls back to the median: the round, the group (a task,
    /// or the update of every client) and the clients it combined.
    public func fallbackNote(round: Int, group: String, clients: [Int]) -> String {
        "round \(round): \(group): \(clients.count) accepted update(s) (client(s) \(clients.map(String.init).joined(separator: ", "))), too few for \(label) (it needs \(minimumClients)); "
            + "used the coordinate-wise median of them this round instead (docs/robustness.md)"
    }
}

extension RobustAggregator {
    /// Krum's score of every client (Blanchard et al. 2017, as Flower computes it): the sum of
    /// its n − f − 2 smallest squared Euclidean distances to the other clients. Flower sorts each
    /// row of the distance matrix, self included, and skips the first entry (the client's own 0),
    /// so a duplicate of a client counts as one neighbour at distance 0. Distances are accumulated
    /// in Double over the coordinates in order; a score adds its distances from the smallest up.
    ///
    /// Flower clamps n − f − 2 to at least 1 without a word; here fewer than f + 3 clients is an
    /// error, because below that the score no longer means what Krum's guarantee needs.
    public static func krumScores(_ vectors: [[Float]], f: Int) throws -> [Double] {
        let k = vectors.count
        guard f >= 0 else { throw PilotError.invalidArgument("krum: f (malicious clients) must be >= 0, got \(f)") }
        let neighbours = k - f - 2
        guard neighbours >= 1 else {
            throw PilotError.invalidArgument("krum: \(k) clients are too few for f = \(f); a score needs n - f - 2 >= 1 neighbours, so at least \(f + 3) clients")
        }
        var d = [Double](repeating: 0, count: k * k)
        for i in 0..<k {
            for j in (i + 1)..<max(i + 1, k) where j < k {
                var s = 0.0
                for (a, b) in zip(vectors[i], vectors[j]) {
                    let diff = Double(a) - Double(b)
                    s += diff * diff
                }
                d[i * k + j] = s
                d[j * k + i] = s
            }
        }
        return (0..<k).map { i in
            let row = d[(i * k)..<(i * k + k)].sorted()
            var score = 0.0
            for v in row[1...neighbours] { score += v }
            return score
        }
    }

    /// Client indices from the lowest Krum score up; equal scores go to the lower index (NumPy's
    /// `argmin`, and its `argsort` on such short arrays, which Flower's Multi-Krum cut uses).
    static func krumRanking(_ vectors: [[Float]], f: Int) throws -> [Int] {
        let scores = try krumScores(vectors, f: f)
        return scores.indices.sorted { (scores[$0], $0) < (scores[$1], $1) }
    }

    /// Applies `reduce` to each coordinate's K client values, sorted ascending in Double, and
    /// rounds the result to Float.
    static func perCoordinate(_ vectors: [[Float]], _ reduce: (ArraySlice<Double>) -> Double) -> [Float] {
        let p = vectors[0].count
        var column = [Double](repeating: 0, count: vectors.count)
        return (0..<p).map { i in
            for (c, v) in vectors.enumerated() { column[c] = Double(v[i]) }
            column.sort()
            return Float(reduce(column[...]))
        }
    }
}
