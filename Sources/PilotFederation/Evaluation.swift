import PilotCore
import PilotData
import PilotModel

/// Greedy-decode evaluation: generate an answer for every example, in batches, and score the
/// answers against the examples' references with the task's metric (`Metrics.score`).
public enum Evaluation {
    /// What `evaluate` produced: the metric and the decoded answers, in example order.
    public struct Result: Sendable {
        public var metric: MetricResult
        public var predictions: [String]
    }

    /// Longest answer to generate by default: the longest generated answer (a caption) is 13 tokens
    /// plus EOS; a little slack lets a wrong model show that it rambles.
    public static let defaultMaxNewTokens = 20

    /// Greedy answers for `examples` (the codec's prompt, the image as pixels),
    /// `batchSize` at a time (at most the model's `maxBatch`).
    public static func generateAnswers(model: MLLM, examples: PreparedExamples, codec: any ExampleCodec,
                                       batchSize: Int? = nil, maxNewTokens: Int = defaultMaxNewTokens) throws -> [String] {
        let B = min(batchSize ?? model.maxBatch, model.maxBatch)
        guard B >= 1 else { throw PilotError.invalidArgument("evaluation batch size must be ≥ 1") }
        var out: [String] = []
        out.reserveCapacity(examples.count)
        var start = 0
        while start < examples.count {
            let idx = start..<min(start + B, examples.count)
            let ids = try model.generate(visual: examples.visual(idx), prompts: idx.map { examples.prompt($0) },
                                         maxNewTokens: maxNewTokens, eosToken: codec.stopToken)
            out += ids.map { codec.decodeAnswer($0) }
            start = idx.upperBound
        }
        return out
    }

    /// Scores answers against the examples' references with `task`'s metric.
    public static func score(predictions: [String], examples: [Example], task: FedTask) throws -> MetricResult {
        guard predictions.count == examples.count else {
            throw PilotError.invalidArgument("\(predictions.count) predictions for \(examples.count) examples")
        }
        if let other = examples.first(where: { $0.task != task }) {
            throw PilotError.invalidArgument("example '\(other.id)' is a \(other.task.rawValue) example, not \(task.rawValue); evaluate each task's test split separately")
        }
        return try Metrics.score(task: task, predictions: predictions, references: examples.map(\.references))
    }

    /// Generates and scores; see `generateAnswers` and `score`.
    public static func evaluate(model: MLLM, examples: [Example], codec: any ExampleCodec, task: FedTask,
                                batchSize: Int? = nil, maxNewTokens: Int = defaultMaxNewTokens) throws -> Result {
        guard !examples.isEmpty else { throw PilotError.invalidArgument("evaluate: no \(task.rawValue) examples") }
        let prepared = try Batcher(config: model.config, codec: codec, truncate: true).prepare(examples)
        return try evaluate(model: model, prepared: prepared, codec: codec, task: task, batchSize: batchSize, maxNewTokens: maxNewTokens)
    }

    /// `evaluate` on examples already prepared for the model (with `truncate: true`, as above).
    public static func evaluate(model: MLLM, prepared: PreparedExamples, codec: any ExampleCodec, task: FedTask,
                                batchSize: Int? = nil, maxNewTokens: Int = defaultMaxNewTokens) throws -> Result {
        guard prepared.count > 0 else { throw PilotError.invalidArgument("evaluate: no \(task.rawValue) examples") }
        let predictions = try generateAnswers(model: model, examples: prepared, codec: codec,
                                              batchSize: batchSize, maxNewTokens: maxNewTokens)
        return Result(metric: try score(predictions: predictions, examples: prepared.examples, task: task), predictions: predictions)
    }

    /// `evaluate` with the built-in layout over a word-level tokenizer.
    public static func evaluate(model: MLLM, examples: [Example], tokenizer: Tokenizer, task: FedTask,
                                batchSize: Int? = nil, maxNewTokens: Int = defaultMaxNewTokens) throws -> Result {
        try evaluate(model: model, examples: examples, codec: WordLevelCodec(tokenizer), task: task,
                     batchSize: batchSize, maxNewTokens: maxNewTokens)
    }
}

/// Generates answers for `examples` with greedy decoding, in batches of the model's `maxBatch`,
/// and scores them with `task`'s metric. `Evaluation.evaluate` also returns the answers.
public func evaluate(model: MLLM, examples: [Example], codec: any ExampleCodec, task: FedTask,
                     batchSize: Int? = nil, maxNewTokens: Int = Evaluation.defaultMaxNewTokens) throws -> MetricResult {
    try Evaluation.evaluate(model: model, examples: examples, codec: codec, task: task,
                            batchSize: batchSize, maxNewTokens: maxNewTokens).metric
}

/// `evaluate` with the built-in layout over a word-level tokenizer.
public func evaluate(model: MLLM, examples: [Example], tokenizer: Tokenizer, task: FedTask,
                     batchSize: Int? = nil, maxNewTokens: Int = Evaluation.defaultMaxNewTokens) throws -> MetricResult {
    try Evaluation.evaluate(model: model, examples: examples, codec: WordLevelCodec(tokenizer), task: task,
                            batchSize: batchSize, maxNewTokens: maxNewTokens).metric
}
