import PilotCore
import PilotJob
import PilotModel
import PilotTensor

/// Pilot's server math as pure functions over client updates (no communicator): the task-aware
/// aggregation of the visual task adapters (Eq. 10) and ATA on the LoRA text adapters (Eq. 11–12).
///
/// Each update holds the client's task adapter, named `connector/task_adapters/<t>/…` after its
/// task t, followed by its LoRA tensors. Eq. 10 averages the adapters of the participating clients
/// of each task, n_k-weighted, in Double, in client order; a task none of whose clients took part
/// keeps its adapter of the last round that had one (server state). ATA picks each client's
/// top-M neighbours among the participants.
extension PilotStrategy {
    /// The server state's name of task t's adapter in round files of format_version 1, which kept each
    /// task's adapter as one flat tensor; now the server state is the shared result itself, every
    /// tensor in its slot (`ConnectorNames.taskAdapters(t)`) with its shape.
    static let legacyServerStatePrefix = "task_adapters/"

    /// A client's share of its task's sum: n_k·ψ_k, in Double.
    public static func taskWeighted(_ vector: [Float], samples: Int) -> [Double] {
        vector.map { Double($0) * Double(samples) }
    }

    /// The task mean from the summed shares and Σ n_k, rounded once to Float.
    public static func taskMean(sum: [Double], samples total: Int64) -> [Float] {
        sum.map { Float($0 / Double(total)) }
    }

    /// An update's task adapter: its values, and each tensor's name after the slot and shape.
    struct AdapterPart {
        var values: [Float] = []
        var suffixes: [String] = []
        var shapes: [[Int]] = []
    }

    /// An update split into its task adapter (the tensors in a task's slot) and its LoRA.
    static func split(_ u: ClientUpdate) throws -> (adapter: AdapterPart, lora: NamedTensors) {
        let t = u.tensors
        var adapter = AdapterPart()
        for (i, name) in t.names.enumerated() {
            guard let slot = ConnectorNames.slot(of: name) else { continue }
            adapter.suffixes.append(slot.suffix); adapter.shapes.append(t.shapes[i]); adapter.values += t[name]!
        }
        guard !adapter.suffixes.isEmpty else {
            throw PilotError.invalidArgument("client \(u.client)'s update has no task adapter (\(ConnectorNames.prefix(ConnectorNames.taskAdaptersRoot))<t>/…)")
        }
        return (adapter, t.filter { ConnectorNames.slot(of: $0) == nil })
    }

    /// The task adapters a server state holds, each flat in the order of `layout`'s tensors.
    static func taskAdapters(_ state: NamedTensors, layout: AdapterPart) throws -> [Int: [Float]] {
        var out: [Int: [Float]] = [:]
        var tasks = Set<Int>()
        for name in state.names {
            if let slot = ConnectorNames.slot(of: name) { tasks.insert(slot.task) }
            else if name.hasPrefix(legacyServerStatePrefix), let t = Int(name.dropFirst(legacyServerStatePrefix.count)) { out[t] = Array(state[name]!) }
        }
        for t in tasks.sorted() {
            var values: [Float] = []
            for suffix in layout.suffixes {
                let name = ConnectorNames.prefix(ConnectorNames.taskAdapters(t)) + suffix
                guard let v = state[name] else {
                    throw PilotError.message("the server state has task \(t)'s adapter without '\(name)', which this round's updates have (server state from another model?)")
                }
                values += v
            }
            out[t] = values
        }
        return out
    }

    /// Eq. 10 for all T tasks: the n_k-weighted mean of the adapters of each task's participating
    /// clients, in client order; nil for a task with no participant.
    public static func taskMeans(_ adapters: [(client: Int, examples: Int, values: [Float])], tasks: [Int], numTasks: Int,
                                 aggregator: RobustAggregator = .mean) throws -> [[Float]?] {
        try taskAggregates(adapters, tasks: tasks, numTasks: numTasks, aggregator: aggregator).means
    }

    /// `taskMeans`, and the tasks (with their participating clients) that had too few updates for
    /// the robust rule and were combined with the coordinate-wise median instead.
    public static func taskAggregates(_ adapters: [(client: Int, examples: Int, values: [Float])], tasks: [Int], numTasks: Int,
                                      aggregator: RobustAggregator = .mean) throws -> (means: [[Float]?], fallbacks: [(task: Int, clients: [Int])]) {
        var fallbacks: [(task: Int, clients: [Int])] = []
        let means = try (0..<numTasks).map { t -> [Float]? in
            let members = adapters.filter { tasks[$0.client] == t }
            guard let first = members.first else { return nil }
            if aggregator != .mean {
                let rule = aggregator.applicable(to: members.count)
                if rule != aggregator { fallbacks.append((t, members.map(\.client))) }
                return try rule.combine(members.map(\.values), weights: members.map { Double($0.examples) }).values
            }
            var sum = [Double](repeating: 0, count: first.values.count)
            var total: Int64 = 0
            for u in members {
                guard u.values.count == sum.count else {
                    throw PilotError.invalidArgument("task \(t): client \(u.client) sent \(u.values.count) task-adapter values, client \(first.client) \(sum.count)")
                }
                let w = taskWeighted(u.values, samples: u.examples)
                for i in sum.indices { sum[i] += w[i] }
                total += Int64(u.examples)
            }
            guard total > 0 else { throw PilotError.invalidArgument("task \(t): its clients have no training examples (Σ n_k = 0)") }
            return taskMean(sum: sum, samples: total)
        }
        return (means, fallbacks)
    }

    /// The server's ATA step (Eq. 11–12) on the clients' LoRA vectors, in client order: distances
    /// with one sgemm, top-M inverse-distance weights, mixing. With `ata` off, the n_k-weighted mean.
    ///
    /// With clients of different LoRA ranks (`lora`, not uniform), the updates hold factors zero-padded
    /// to the largest rank: the distances are between the effective updates ΔW_k = (α_k/r_k)·A_k·B_k
    /// (`Aggregate.effectiveUpdateDistances`), the padded factors are mixed, and each client keeps its
    /// leading r_k components (`ServerStep`).
    public func mixLoRA(_ updates: [ClientUpdate], tasks: [Int], lora: ClientLoRA? = nil) throws -> [[Float]] {
        var notes: [String] = []
        var choices: [Int: ATAChoice] = [:]
        return try mixLoRA(updates, tasks: tasks, lora: lora, round: 0, notes: &notes, choices: &choices)
    }

    /// `mixLoRA`, adding to `notes` the line of a round whose robust rule (ATA off) fell back to the
    /// median, and to `choices` each client's neighbours and weights (ATA on; metrics.h5's `/ata`).
    func mixLoRA(_ updates: [ClientUpdate], tasks: [Int], lora: ClientLoRA?, round: Int, notes: inout [String],
                 choices: inout [Int: ATAChoice]) throws -> [[Float]] {
        let vectors = updates.map(\.tensors.values)
        let k = vectors.count
        let n = updates.map(\.examples)
        guard settings.ata else {
            let rule = settings.aggregator.applicable(to: k)
            if rule != settings.aggregator {
                notes.append(settings.aggregator.fallbackNote(round: round, group: "the LoRA average (pilot.ata = false)", clients: updates.map(\.client)))
            }
            let mean = try Aggregate.combine(vectors, weights: n.map(Double.init), with: rule)
            return Array(repeating: mean, count: k)
        }
        let p = vectors.first?.count ?? 0
        if let bad = vectors.firstIndex(where: { $0.count != p }) {
            throw PilotError.invalidArgument("ATA: client \(updates[bad].client) sent \(vectors[bad].count) LoRA values, client \(updates[0].client) \(p)")
        }
        let distances: [Double]
        if let lora, !lora.isUniform {
            distances = try Aggregate.effectiveUpdateDistances(updates.map(\.tensors), ranks: updates.map { lora.ranks[$0.client] },
                                                               scales: updates.map { lora.scale($0.client) })
        } else {
            distances = Aggregate.pairwiseDistances(Aggregate.rows(vectors, length: p), clients: k, length: p)
        }
        let updateTasks = updates.map { tasks[$0.client] }, m = min(settings.ataM, max(1, k - 1))
        let matrix = try Aggregate.ataMixingMatrix(distances: distances, samples: n, tasks: updateTasks,
                                                   selection: settings.ataSelection, m: m, normalisation: settings.ataNormalisation)
        for i in 0..<k {
            let picked = Aggregate.ataNeighbours(of: i, distances: distances, tasks: updateTasks, selection: settings.ataSelection, m: m)
            choices[updates[i].client] = ATAChoice(neighbours: picked.map { updates[$0].client }, weights: picked.map { matrix[i][$0] },
                                                   distances: picked.map { distances[i * k + $0] }, selfWeight: matrix[i][i])
        }
        return Aggregate.mix(vectors, matrix: matrix)
    }

    /// One round of Pilot's server: the T task adapters every client receives (shared), each
    /// participant's personalised LoRA (personal), and the task adapters as server state.
    public func aggregate(round: Int, updates: [ClientUpdate], serverState: NamedTensors, roster: Roster) throws -> RoundResult {
        let parts = try updates.map(Self.split)
        let (means, fallbacks) = try Self.taskAggregates(zip(updates, parts).map { ($0.client, $0.examples, $1.adapter.values) },
                                                         tasks: roster.clientTasks, numTasks: roster.numTasks, aggregator: settings.aggregator)
        let notes = fallbacks.map { settings.aggregator.fallbackNote(round: round, group: "task \($0.task)'s adapter (Eq. 10)", clients: $0.clients) }
        let loras = zip(updates, parts).map { ClientUpdate(client: $0.client, examples: $0.examples, tensors: $1.lora) }
        return try assemble(round: round, means: means, layout: parts[0].adapter, loras: loras, serverState: serverState, roster: roster, notes: notes)
    }

    /// The round's result from Eq. 10's task means (nil: a task without participants keeps its
    /// adapter of the server state) and the participants' LoRA (mixed by ATA).
    func assemble(round: Int, means: [[Float]?], layout: AdapterPart, loras: [ClientUpdate], serverState: NamedTensors,
                  roster: Roster, notes: [String]) throws -> RoundResult {
        var notes = notes
        var adapters = try Self.taskAdapters(serverState, layout: layout)
        for (t, m) in means.enumerated() { if let m { adapters[t] = m } }
        // Shared: every task adapter the server has, in its slot; it is also the server's state.
        var shared = NamedTensors()
        for t in adapters.keys.sorted() {
            let values = adapters[t]!
            guard values.count == layout.values.count else {
                throw PilotError.message("task \(t)'s adapter has \(values.count) values, this round's \(layout.values.count) (server state from another model?)")
            }
            var offset = 0
            for (suffix, shape) in zip(layout.suffixes, layout.shapes) {
                let n = shape.reduce(1, *)
                try shared.append(ConnectorNames.prefix(ConnectorNames.taskAdapters(t)) + suffix, shape: shape, values: values[offset..<(offset + n)])
                offset += n
            }
        }
        var choices: [Int: ATAChoice] = [:]
        let mixed = try mixLoRA(loras, tasks: roster.clientTasks, lora: roster.lora, round: round, notes: &notes, choices: &choices)
        var personal: [Int: NamedTensors] = [:]
        for (u, v) in zip(loras, mixed) { personal[u.client] = try u.tensors.with(values: v) }
        var result = RoundResult(shared: shared, personal: personal, serverState: shared)
        result.notes = notes
        result.ata = choices
        return result
    }
}
