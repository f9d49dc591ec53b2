import PilotCore
import PilotJob
import PilotModel
import PilotTensor

/// Pilot under `secure.aggregation` (with `secure.lora_in_clear = true`): Eq. 10's task adapters are
/// masked and summed within each task's participating clients (one group per task, n_k-weighted);
/// the LoRA tensors cross in the clear, because ATA (Eq. 11–12) needs the distance between every pair
/// of clients' LoRA. The server thus sees each task's mean adapter and every client's LoRA, but no
/// client's own task adapter.
extension PilotStrategy: SecureAveraging {
    public func secureGroup(client: Int, roster: Roster) -> Int { roster.clientTasks[client] }
    public func isSummed(_ name: String) -> Bool { ConnectorNames.slot(of: name) != nil }
    public func secureWeight(_ update: ClientUpdate) -> Double { Double(update.examples) }

    public func aggregate(round: Int, means: [Int: NamedTensors], clear: [ClientUpdate], serverState: NamedTensors,
                          roster: Roster) throws -> RoundResult {
        var layout: AdapterPart? = nil
        var taskMeans = [[Float]?](repeating: nil, count: roster.numTasks)
        for t in means.keys.sorted() {
            let m = means[t]!
            var part = AdapterPart()
            for (i, name) in m.names.enumerated() {
                guard let slot = ConnectorNames.slot(of: name), slot.task == t else {
                    throw PilotError.message("secure aggregation: task \(t)'s sum holds '\(name)', which is not in its adapter slot")
                }
                part.suffixes.append(slot.suffix); part.shapes.append(m.shapes[i])
            }
            part.values = m.values
            if let l = layout, l.suffixes != part.suffixes || l.shapes != part.shapes {
                throw PilotError.message("secure aggregation: task \(t)'s adapter has other tensors than the other tasks'")
            }
            layout = layout ?? part
            guard t >= 0 && t < roster.numTasks else { throw PilotError.message("secure aggregation: a sum for task \(t) of \(roster.numTasks)") }
            taskMeans[t] = m.values
        }
        guard let layout else { throw PilotError.message("pilot: no secure sum of a task adapter this round") }
        return try assemble(round: round, means: taskMeans, layout: layout, loras: clear, serverState: serverState, roster: roster, notes: [])
    }
}
