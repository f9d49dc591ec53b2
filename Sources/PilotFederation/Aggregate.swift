import PilotCore
import PilotTensor

/// The pure math of federated aggregation, as functions over flat float vectors (Flower's
/// `aggregate.py` in spirit). Strategies arrange the work; the math lives here and is tested
/// against hand-computed cases and golden values. Every sum runs in a fixed order (client index
/// order), so results are bitwise reproducible.
public enum Aggregate {
    /// Σ_k w_k·x_k / Σ_k w_k, accumulated in Double in client order, rounded once to Float.
    public static func weightedMean(_ vectors: [[Float]], weights: [Double]) throws -> [Float] {
        guard let first = vectors.first else { throw PilotError.invalidArgument("weightedMean: no vectors") }
        guard weights.count == vectors.count else {
            throw PilotError.invalidArgument("weightedMean: \(vectors.count) vectors but \(weights.count) weights")
        }
        if let bad = vectors.firstIndex(where: { $0.count != first.count }) {
            throw PilotError.invalidArgument("weightedMean: vector \(bad) has \(vectors[bad].count) elements, vector 0 has \(first.count)")
        }
        let total = weights.reduce(0, +)
        guard total > 0, weights.allSatisfy({ $0 >= 0 && $0.isFinite }) else {
            throw PilotError.invalidArgument("weightedMean: weights must be non-negative with a positive sum, got \(weights)")
        }
        var acc = [Double](repeating: 0, count: first.count)
        for (v, w) in zip(vectors, weights) where w != 0 {
            for i in acc.indices { acc[i] += w * Double(v[i]) }
        }
        return acc.map { Float($0 / total) }
    }
}

extension Aggregate {
    /// The averaging step of every strategy: `weightedMean` for `.mean` (bit for bit what the
    /// strategies always did), else the robust rule on the same vectors and weights.
    public static func combine(_ vectors: [[Float]], weights: [Double], with rule: RobustAggregator) throws -> [Float] {
        if rule == .mean { return try weightedMean(vectors, weights: weights) }
        return try rule.combine(vectors, weights: weights).values
    }
}

// MARK: - ATA: adaptive text-adapter aggregation (Pilot Eq. 11–12)

/// Which clients are candidates for client k's neighbour set (paper Table 5).
public enum ATASelection: String, Sendable, CaseIterable {
    /// The M nearest other clients, of any task (the paper's default, M = 6).
    case topM = "top_m"
    /// Every other client of the same task.
    case sameTask = "same_task"
    /// Every other client, no top-M cut.
    case allClients = "all"
}

/// The normaliser Z of Eq. 12 (docs/design.md §3's open point).
public enum ATANormalisation: String, Sendable, CaseIterable {
    /// Z = n_k + Σ n_k'·w_k', so the mixing weights sum to one (default).
    case normalised
    /// Z = n_k + Σ n_k', as printed in the paper; it shrinks Θ.
    case paperLiteral = "paper_literal"
}

extension Aggregate {
    /// The vectors as the rows of one [K, P] buffer (one allocation; `flatMap` would regrow it).
    public static func rows(_ vectors: [[Float]], length p: Int) -> [Float] {
        var flat = [Float]()
        flat.reserveCapacity(vectors.count * p)
        for v in vectors { flat.append(contentsOf: v) }
        return flat
    }

    /// Pairwise Euclidean distances between the rows of X [K, P] (row-major), through the Gram
    /// matrix G = X·Xᵀ computed with one sgemm: d²(a, b) = ‖a‖² + ‖b‖² − 2·a·b.
    ///
    /// Cancellation makes the Gram form inaccurate for nearly equal rows (it can even go
    /// negative), so pairs whose Gram distance is tiny relative to their norms are recomputed
    /// directly in Double. A duplicated client therefore has distance exactly 0.
    public static func pairwiseDistances(_ x: [Float], clients k: Int, length p: Int) -> [Double] {
        precondition(x.count == k * p, "pairwiseDistances: \(x.count) values are not [\(k), \(p)]")
        var gram = [Float](repeating: 0, count: k * k)
        x.withUnsafeBufferPointer { xb in
            gram.withUnsafeMutableBufferPointer { gb in
                sgemm(transB: true, m: k, n: k, k: p, a: xb.baseAddress!, b: xb.baseAddress!, c: gb.baseAddress!)
            }
        }
        var d = [Double](repeating: 0, count: k * k)
        for i in 0..<k {
            for j in (i + 1)..<max(i + 1, k) where j < k {
                let ni = Double(gram[i * k + i]), nj = Double(gram[j * k + j])
                var d2 = ni + nj - 2 * Double(gram[i * k + j])
                // float32 Gram entries carry ~1e-7 relative error of ‖a‖²+‖b‖²; below ~1e-4 of
                // that scale the difference is noise, so compute it exactly.
                if d2 <= 1e-4 * (ni + nj) {
                    d2 = 0
                    for q in 0..<p {
                        let diff = Double(x[i * p + q]) - Double(x[j * p + q])
                        d2 += diff * diff
                    }
                }
                let dist = max(d2, 0).squareRoot()
                d[i * k + j] = dist
                d[j * k + i] = dist
            }
        }
        return d
    }

    /// The K×K mixing matrix of ATA: row k holds the coefficients with which client k's
    /// personalised LoRA combines every client's LoRA (Eq. 12). Neighbours are chosen by
    /// `selection`; ties in distance go to the lower client index. Inverse-distance weights
    /// (Eq. 11) w_k' = (1/d_kk') / Σ(1/d); if some selected neighbours are at distance 0 (a
    /// duplicated client), the limit of those weights is used: equal shares among the
    /// zero-distance neighbours and nothing for the others.
    public static func ataMixingMatrix(distances d: [Double], samples n: [Int], tasks: [Int],
                                       selection: ATASelection, m: Int,
                                       normalisation: ATANormalisation) throws -> [[Double]] {
        let k = n.count
        guard d.count == k * k, tasks.count == k else {
            throw PilotError.invalidArgument("ataMixingMatrix: \(k) clients but \(d.count) distances and \(tasks.count) task ids")
        }
        guard selection != .topM || m >= 1 else { throw PilotError.invalidArgument("ATA top-M needs M >= 1 (got \(m))") }
        var matrix = [[Double]](repeating: [Double](repeating: 0, count: k), count: k)
        for i in 0..<k {
            let candidates = ataNeighbours(of: i, distances: d, tasks: tasks, selection: selection, m: m)
            let w = inverseDistanceWeights(candidates.map { d[i * k + $0] })
            var z = Double(n[i])
            switch normalisation {
            case .normalised: for (c, wc) in zip(candidates, w) { z += Double(n[c]) * wc }
            case .paperLiteral: for c in candidates { z += Double(n[c]) }
            }
            matrix[i][i] = Double(n[i]) / z
            for (c, wc) in zip(candidates, w) { matrix[i][c] = Double(n[c]) * wc / z }
        }
        return matrix
    }

    /// The neighbours ATA mixes into row i (indices into the round's updates), nearest first, ties
    /// by index: the M nearest (`.topM`), every same-task client (`.sameTask`) or every other one.
    public static func ataNeighbours(of i: Int, distances d: [Double], tasks: [Int], selection: ATASelection, m: Int) -> [Int] {
        let k = tasks.count
        var candidates = (0..<k).filter { $0 != i }
        if selection == .sameTask { candidates = candidates.filter { tasks[$0] == tasks[i] } }
        candidates.sort { (d[i * k + $0], $0) < (d[i * k + $1], $1) }
        if selection == .topM { candidates = Array(candidates.prefix(m)) }
        return candidates
    }

    /// (1/d) / Σ(1/d), with the d → 0 limit for zero distances.
    public static func inverseDistanceWeights(_ distances: [Double]) -> [Double] {
        if distances.isEmpty { return [] }
        let zeros = distances.filter { $0 == 0 }.count
        if zeros > 0 { return distances.map { $0 == 0 ? 1 / Double(zeros) : 0 } }
        let inv = distances.map { 1 / $0 }
        let total = inv.reduce(0, +)
        return inv.map { $0 / total }
    }

    /// Rows of `matrix` applied to the client vectors: out_i = Σ_j matrix[i][j]·x_j, in Double,
    /// in client order.
    public static func mix(_ vectors: [[Float]], matrix: [[Double]]) -> [[Float]] {
        let p = vectors.first?.count ?? 0
        return matrix.map { row in
            var acc = [Double](repeating: 0, count: p)
            for (j, c) in row.enumerated() where c != 0 {
                let v = vectors[j]
                for q in 0..<p { acc[q] += c * Double(v[q]) }
            }
            return acc.map { Float($0) }
        }
    }
}
