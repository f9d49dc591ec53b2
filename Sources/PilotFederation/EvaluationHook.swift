import PilotData
import PilotModel

/// What a strategy's `evaluate` hook gets: the client's model with its personalised state
/// loaded, its test examples (prepared once per rank, with the cached vision features when the run
/// caches them) and its own training data.
public struct EvaluationContext {
    public var model: MLLM
    public var examples: PreparedExamples
    public var training: PreparedExamples
    public var codec: any ExampleCodec
    public var task: FedTask
    public var batchSize: Int
    public var maxNewTokens: Int
}

extension FederatedStrategy {
    /// Generation and the task's metric (every method but FedDPA).
    public func evaluate(_ c: EvaluationContext) throws -> [String: Double] {
        let result = try Evaluation.evaluate(model: c.model, prepared: c.examples, codec: c.codec, task: c.task,
                                             batchSize: c.batchSize, maxNewTokens: c.maxNewTokens)
        return ["eval_score": result.metric.score]
    }
}
