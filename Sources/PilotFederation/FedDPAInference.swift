import PilotCore
import PilotData
import PilotModel

/// FedDPA-T's instance-wise dynamic weighting at inference (Yang et al., 2024): a test instance gets
/// the local LoRA with weight α = max(0, mean_j cos(h, s_j)), where h is the instance's last-token
/// hidden state and s_j are those of a few of the client's own training prompts. An instance that
/// looks like the client's data leans on the local adapter; one that does not falls back to the
/// global one.
///
/// Choices (docs/baselines.md): the states are computed with the global LoRA only (α = 0), so that
/// the weighting does not depend on the adapter it weighs; the support set is the first `support`
/// examples of the client's training shard, in shard order.
public enum FedDPAInference {
    /// Cosine similarity, accumulated in Double; 0 when either vector is zero.
    public static func cosine(_ a: [Float], _ b: [Float]) -> Double {
        precondition(a.count == b.count, "cosine of vectors of \(a.count) and \(b.count) values")
        var dot = 0.0, na = 0.0, nb = 0.0
        for i in a.indices {
            let x = Double(a[i]), y = Double(b[i])
            dot += x * y; na += x * x; nb += y * y
        }
        guard na > 0, nb > 0 else { return 0 }
        return dot / (na.squareRoot() * nb.squareRoot())
    }

    /// α = max(0, mean over the support of cos(query, s_j)), in [0, 1].
    public static func weight(query: [Float], support: [[Float]]) -> Float {
        guard !support.isEmpty else { return 0 }
        let mean = support.map { cosine(query, $0) }.reduce(0, +) / Double(support.count)
        return Float(min(1, max(0, mean)))
    }

    /// Last-token states of the first `count` of `examples`, `batchSize` at a time, with the global LoRA only.
    static func states(model: MLLM, examples: PreparedExamples, count: Int, batchSize: Int) throws -> [[Float]] {
        let saved = model.localLoRAWeight
        defer { model.localLoRAWeight = saved }
        model.localLoRAWeight = 0
        var out: [[Float]] = []
        var start = 0
        let n = min(count, examples.count)
        while start < n {
            let idx = start..<min(start + batchSize, n)
            out += try model.promptStates(visual: examples.visual(idx), prompts: idx.map { examples.prompt($0) })
            start = idx.upperBound
        }
        return out
    }

    public struct Result: Sendable {
        public var evaluation: Evaluation.Result
        /// α of every test instance, in example order.
        public var weights: [Float]
    }

    /// Greedy answers with each instance's own α (one sequence at a time, since α changes the merged
    /// weights), scored with the task's metric.
    /// - Parameters:
    ///   - prepared: the test examples, prepared for the model (`Batcher(…, truncate: true)`).
    ///   - support: the client's training examples; the first `supportCount` are the support set.
    public static func evaluate(model: MLLM, prepared: PreparedExamples, support: PreparedExamples, supportCount: Int,
                                codec: any ExampleCodec, task: FedTask, batchSize: Int, maxNewTokens: Int) throws -> Result {
        guard model.variant == .dualLoRA else { throw PilotError.invalidArgument("FedDPA inference needs the FedDPA variant, not \(model.variant)") }
        guard prepared.count > 0 else { throw PilotError.invalidArgument("evaluate: no \(task.rawValue) examples") }
        guard support.count > 0, supportCount > 0 else { throw PilotError.invalidArgument("FedDPA inference needs at least one local training prompt") }
        let B = max(1, min(batchSize, model.maxBatch))
        let supportStates = try states(model: model, examples: support, count: supportCount, batchSize: B)
        let queryStates = try states(model: model, examples: prepared, count: prepared.count, batchSize: B)
        let weights = queryStates.map { weight(query: $0, support: supportStates) }
        let saved = model.localLoRAWeight
        defer { model.localLoRAWeight = saved }
        var predictions: [String] = []
        for i in 0..<prepared.count {
            model.localLoRAWeight = weights[i]
            let ids = try model.generate(visual: prepared.visual([i]), prompts: [prepared.prompt(i)],
                                         maxNewTokens: maxNewTokens, eosToken: codec.stopToken)
            predictions.append(codec.decodeAnswer(ids[0]))
        }
        let metric = try Evaluation.score(predictions: predictions, examples: prepared.examples, task: task)
        return Result(evaluation: Evaluation.Result(metric: metric, predictions: predictions), weights: weights)
    }
}
