import PilotData
import PilotModel

/// What a strategy's `evaluate` hook gets: the client's model with its personalised state
/// loaded, its test examples and its own training data.
public struct EvaluationContext {
    public var model: MLLM
    public var examples: [Example]
    public var training: PreparedExamples
    public var codec: any ExampleCodec
    public var task: FedTask
    public var batchSize: Int
    public var maxNewTokens: Int
}

extension FederatedStrategy {
    /// Generation and the task's metric (every method but FedDPA).
    public func evaluate(_ c: EvaluationContext) throws -> [String: Double] {
        let result = try Evaluation.evaluate(model: c.model, examples: c.examples, codec: c.codec, task: c.task,
                                             batchSize: c.batchSize, maxNewTokens: c.maxNewTokens)
        return ["eval_score": result.metric.score]
    }
}
