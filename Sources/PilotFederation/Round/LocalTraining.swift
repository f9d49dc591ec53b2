import PilotComm
import PilotCore
import PilotData
import PilotJob
import PilotModel
import PilotTensor

/// A client's local training in its round (E epochs in a seeded order, or data-parallel steps for
/// centralized training) and the checks on what it produced.
extension ClientHost {
    /// Throws, naming the first tensor and how many values, when a client's trained parameters or its
    /// training loss are not finite.
    static func checkFinite(_ model: MLLM, loss: Double, round: Int) throws {
        let t = model.parameters.trainable
        var bad = 0, first = -1
        for i in 0..<t.count where !t.pointer[i].isFinite { bad += 1; if first < 0 { first = i } }
        if bad > 0 {
            let entry = model.parameters.entries.first { $0.trainable && first >= $0.offset && first < $0.offset + $0.shape.reduce(1, *) }
            let name = entry.map { "\($0.name)[\(first - $0.offset)]" } ?? "value \(first)"
            throw PilotError.message("its trained update has \(bad) non-finite value(s) (first: \(name) = \(t.pointer[first])), training loss \(loss); the round is not aggregated and \(round > 1 ? "round \(round - 1) stays the latest checkpoint" : "no round is committed"). Lower the learning rate (train.lr, train.lr_stage1/2) or check this client's data, then resume")
        }
        if !loss.isFinite {
            throw PilotError.message("its training loss is \(loss) (the parameters are still finite); the round is not aggregated and \(round > 1 ? "round \(round - 1) stays the latest checkpoint" : "no round is committed"). Lower the learning rate or check this client's data, then resume")
        }
    }

    /// E epochs over the client's shard in a seeded order, batch by batch (a short last batch
    /// included), with warm-up then a cosine decay over the round's steps.
    func trainLocally(_ model: MLLM, data: PreparedExamples, spec: ModelSpec, seed: UInt64) throws -> LocalLosses {
        let B = settings.batchSize
        let epochs = settings.epochs
        let perEpoch = (data.count + B - 1) / B
        var total = epochs * perEpoch
        let cap = settings.maxSteps
        if cap > 0 { total = min(total, cap) }
        let clients = strategy.dataParallel ? federation.clients : nil
        if let clients {
            // Every client takes the same number of steps; a smaller shard wraps around its order.
            total = Int(try clients.allreduce(scalar: Int64(total), op: .max))
        }
        let schedule = LRSchedule(peak: Float(spec.learningRate), minimum: Float(spec.learningRate) * 0.1,
                                  warmupSteps: min(settings.warmupSteps, max(0, total - 1)), totalSteps: max(total, 1))
        model.optimizer.reset()
        var out = LocalLosses()
        var step = 0
        var rng = PilotRNG(seed: seed)
        if clients != nil && perEpoch == 0 { throw PilotError.message("centralized training: this client has no training examples") }
        var epoch = 0
        epochLoop: while step < total {
            if epoch >= epochs && clients == nil { break }
            epoch += 1
            var order = Array(0..<data.count)
            for i in stride(from: order.count - 1, to: 0, by: -1) { order.swapAt(i, rng.int(i + 1)) }
            for b in 0..<perEpoch {
                if step >= total { break epochLoop }
                let idx = order[(b * B)..<min((b + 1) * B, order.count)]
                let parts: LossParts
                if let clients {
                    parts = try model.forwardBackward(data.batch(idx))
                    try Self.sumGradients(model, targets: parts.targets, over: clients)
                    model.optimizer.step(params: model.parameters.trainable, grads: model.parameters.gradients,
                                         lr: schedule.rate(at: step))
                } else {
                    parts = try model.trainStep(data.batch(idx), learningRate: schedule.rate(at: step))
                }
                out.total += parts.total; out.ce += parts.ce; out.diff += parts.diff
                out.balance += parts.balance; out.z += parts.z; out.proximal += parts.penalty
                step += 1
            }
        }
        let n = Double(max(step, 1))
        out.total /= n; out.ce /= n; out.diff /= n; out.balance /= n; out.z /= n; out.proximal /= n
        out.steps = step
        return out
    }

    /// Data-parallel step: turns this client's gradient of its batch's mean loss into its share of the
    /// union batch's (weight targets_k / Σ targets) and sums the shares over `clients` in rank order,
    /// so every client ends with the same gradient.
    static func sumGradients(_ model: MLLM, targets: Int, over clients: any Communicator) throws {
        let total = try clients.allreduce(scalar: Int64(targets), op: .sum)
        let grads = model.parameters.gradients
        let w = total > 0 ? Float(Double(targets) / Double(total)) : 0
        if w != 1 { let g = grads.pointer; for i in 0..<grads.count { g[i] *= w } }
        try clients.allreduce(grads.buffer, op: .sum)
    }

    /// Puts the personalised (post-aggregation) state into a client's model for evaluation.
    static func putPersonalised(_ model: MLLM, state: NamedTensors, task t: Int) throws {
        try model.assign(state)
        if model.variant == .pilotStage1 {
            // Stage 1 has one task adapter: evaluate with this task's aggregated one.
            let own = try state.filter { ConnectorNames.stage1Name($0, task: t) != nil }
                .renamed { ConnectorNames.stage1Name($0, task: t)! }
            try model.assign(own)
        }
    }
}
