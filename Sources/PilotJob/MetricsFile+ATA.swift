import PilotCore
import PilotHDF5

/// ATA's choice for one client in one round (Eq. 11–12): the neighbours its top-M picked, nearest
/// first, the weight each got in the client's personalised LoRA, their distances, and the weight of
/// the client's own update.
public struct ATAChoice: Sendable, Equatable {
    /// Client indices of the neighbours, nearest first (ties by client index, as ATA sorts them).
    public var neighbours: [Int]
    /// The mixing weight of each neighbour (n_c·w_c / Z, Eq. 12).
    public var weights: [Double]
    /// The distance to each neighbour (Euclidean between LoRA vectors, or between effective updates with HetLoRA).
    public var distances: [Double]
    /// The weight of the client's own update (n_i / Z).
    public var selfWeight: Double
    public init(neighbours: [Int], weights: [Double], distances: [Double], selfWeight: Double) {
        self.neighbours = neighbours; self.weights = weights; self.distances = distances; self.selfWeight = selfWeight
    }
}

/// metrics.h5's `/ata/…` datasets: written only by runs whose server ran ATA (Pilot with
/// `pilot.ata = true`), so every other run's file keeps exactly its datasets.
///
///     /ata/neighbours   int64   [R, K, M]  client index of each neighbour, nearest first; -1: none
///     /ata/weights      float64 [R, K, M]  its weight in the client's mixed LoRA; NaN: none
///     /ata/distances    float64 [R, K, M]  its distance to the client; NaN: none
///     /ata/self_weight  float64 [R, K]     the weight of the client's own LoRA; NaN: no update
///
/// A client that sent no update in a round (not sampled, rejected) has -1/NaN there, and so has a
/// round rebuilt from the round files on resume (they do not keep ATA's choice). For each client,
/// self_weight + Σ weights = 1 (`pilot.ata_z = "normalised"`).
extension MetricsLog {
    static let ataGroup = "ata"

    /// The widest choice of the run (M, or fewer when a round had fewer other clients).
    var ataWidth: Int { ata.flatMap { $0.values.map(\.neighbours.count) }.max() ?? 0 }

    func writeATA(to f: H5File, clients k: Int) throws {
        guard ata.contains(where: { !$0.isEmpty }) else { return }
        let r = rounds.count, m = ataWidth
        var neighbours = [Int64](repeating: -1, count: r * k * m)
        var weights = [Double](repeating: .nan, count: r * k * m)
        var distances = [Double](repeating: .nan, count: r * k * m)
        var selfWeight = [Double](repeating: .nan, count: r * k)
        for (ri, row) in ata.enumerated() {
            for (c, choice) in row where c >= 0 && c < k {
                selfWeight[ri * k + c] = choice.selfWeight
                for j in choice.neighbours.indices {
                    let at = (ri * k + c) * m + j
                    neighbours[at] = Int64(choice.neighbours[j]); weights[at] = choice.weights[j]; distances[at] = choice.distances[j]
                }
            }
        }
        let g = Self.ataGroup + "/"
        try f.write(neighbours, shape: [r, k, m], at: g + "neighbours")
        try f.write(weights, shape: [r, k, m], at: g + "weights")
        try f.write(distances, shape: [r, k, m], at: g + "distances")
        try f.write(selfWeight, shape: [r, k], at: g + "self_weight")
        try f.setAttribute("description", .string("ATA (Eq. 11-12) per round and client: the M neighbours its top-M picked (client indices, nearest first; -1 where none: a client without an update that round, or a round rebuilt on resume), their mixing weights and distances, and the client's own weight; self_weight + sum(weights) = 1"), at: Self.ataGroup)
        try f.setAttribute("dims", .strings(["round", "client", "neighbour"]), at: g + "neighbours")
        try f.setAttribute("dims", .strings(["round", "client", "neighbour"]), at: g + "weights")
        try f.setAttribute("dims", .strings(["round", "client", "neighbour"]), at: g + "distances")
        try f.setAttribute("dims", .strings(["round", "client"]), at: g + "self_weight")
    }

    /// The rows' ATA choices from a file (none for a file without `/ata`).
    static func readATA(from f: H5File, rounds r: Int) throws -> [[Int: ATAChoice]] {
        let g = ataGroup + "/"
        guard f.exists(g + "neighbours") else { return Array(repeating: [:], count: r) }
        let n = try f.read(Int64.self, at: g + "neighbours"), w = try f.read(Double.self, at: g + "weights")
        let d = try f.read(Double.self, at: g + "distances"), s = try f.read(Double.self, at: g + "self_weight")
        guard n.shape.count == 3, n.shape[0] == r, w.shape == n.shape, d.shape == n.shape, s.shape == [r, n.shape[1]] else {
            throw PilotError.message("metrics.h5: /ata datasets of shapes \(n.shape), \(w.shape), \(d.shape), \(s.shape) do not match \(r) rounds")
        }
        let k = n.shape[1], m = n.shape[2]
        return (0..<r).map { ri in
            var row: [Int: ATAChoice] = [:]
            for c in 0..<k where !s.values[ri * k + c].isNaN {
                let base = (ri * k + c) * m
                let used = (0..<m).filter { n.values[base + $0] >= 0 }
                row[c] = ATAChoice(neighbours: used.map { Int(n.values[base + $0]) }, weights: used.map { w.values[base + $0] },
                                   distances: used.map { d.values[base + $0] }, selfWeight: s.values[ri * k + c])
            }
            return row
        }
    }
}
