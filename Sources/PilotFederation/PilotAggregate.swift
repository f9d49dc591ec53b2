import PilotCore

/// Pilot's server math as pure functions over client updates (no communicator): the task-aware
/// aggregation of the visual task adapters (Eq. 10) and ATA on the LoRA text adapters (Eq. 11–12).
///
/// Eq. 10 runs, in a job, as an allreduce inside each task's communicator (DESIGN §6): each
/// client contributes `taskWeighted`, the communicator sums, and `taskMean` divides. `taskMeans`
/// is the same math folded in client order in one process; it equals the allreduce bit for bit
/// for up to two clients per task (a sum of two terms does not depend on order).
extension PilotStrategy {
    /// A client's share of its task's sum: n_k·ψ_k, in Double.
    public static func taskWeighted(_ vector: [Float], samples: Int) -> [Double] {
        vector.map { Double($0) * Double(samples) }
    }

    /// The task mean from the summed shares and Σ n_k, rounded once to Float.
    public static func taskMean(sum: [Double], samples total: Int64) -> [Float] {
        sum.map { Float($0 / Double(total)) }
    }

    /// Eq. 10 for all T tasks: the n_k-weighted mean of the updates of each task's clients.
    public static func taskMeans(_ updates: [ClientUpdate], tasks: [Int], numTasks: Int) throws -> [[Float]] {
        try (0..<numTasks).map { t in
            let members = updates.filter { tasks[$0.client] == t }
            guard let first = members.first else {
                throw PilotError.message("task aggregation: task \(t) has no clients among the \(updates.count) updates (every task needs at least one client)")
            }
            var sum = [Double](repeating: 0, count: first.tensors.values.count)
            var total: Int64 = 0
            for u in members {
                guard u.tensors.values.count == sum.count else {
                    throw PilotError.invalidArgument("task \(t): client \(u.client) sent \(u.tensors.values.count) values, client \(first.client) \(sum.count)")
                }
                let w = taskWeighted(u.tensors.values, samples: u.examples)
                for i in sum.indices { sum[i] += w[i] }
                total += Int64(u.examples)
            }
            return taskMean(sum: sum, samples: total)
        }
    }

    /// The server's ATA step (Eq. 11–12) on the clients' LoRA vectors, in client order: distances
    /// with one sgemm, top-M inverse-distance weights, mixing. With `ata` off, the n_k-weighted mean.
    public func mixLoRA(_ updates: [ClientUpdate], tasks: [Int]) throws -> [[Float]] {
        let vectors = updates.map(\.tensors.values)
        let k = vectors.count
        let n = updates.map(\.examples)
        guard settings.ata else {
            let mean = try Aggregate.weightedMean(vectors, weights: n.map(Double.init))
            return Array(repeating: mean, count: k)
        }
        let p = vectors.first?.count ?? 0
        let distances = Aggregate.pairwiseDistances(vectors.flatMap { $0 }, clients: k, length: p)
        let matrix = try Aggregate.ataMixingMatrix(distances: distances, samples: n, tasks: updates.map { tasks[$0.client] },
                                                   selection: settings.ataSelection, m: min(settings.ataM, max(1, k - 1)),
                                                   normalisation: settings.ataNormalisation)
        return Aggregate.mix(vectors, matrix: matrix)
    }

    /// One round of Pilot's server: every client's personalised LoRA (results, client order) and
    /// the T task adapters that every client receives (the server state a checkpoint keeps).
    public func aggregate(round: Int, adapters: [ClientUpdate], lora: [ClientUpdate],
                          tasks: [Int], numTasks: Int) throws -> Aggregation<[[Float]]> {
        let means = try Self.taskMeans(adapters, tasks: tasks, numTasks: numTasks)
        return Aggregation(results: try mixLoRA(lora, tasks: tasks), serverState: means)
    }
}
