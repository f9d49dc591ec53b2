import ArgumentParser
import Foundation
import PilotCore
import PilotData
import PilotFederation

/// `pilot eval`: score any client's personalised model of any committed round on any test split.
struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Evaluate a client's personalised model from a run's checkpoint on a test split.",
        discussion: """
        Example: pilot eval --run runs/vu-pilot --client 4 --round 3
        By default the client is scored on its own task's test split; --split takes any shard \
        (e.g. another task's test split, or one imported with `pilot data import`).
        The base model every client starts from (the pretrained connector, no LoRA) is scored with \
        --base BASE.h5 instead of --run/--client, on --split or on a scenario's test split \
        (--data DIR --task T): pilot eval --base data/vu/base-smollm2.h5 --data data/vu --task vqa
        """)

    @Option(name: .customLong("run"), help: "Run directory written by `pilot train`.") var runDirectory: String?
    @Option(help: "Client index (0-based).") var client: Int?
    @Option(help: "Score this base checkpoint (`pilot pretrain`'s output) instead of a run's client.") var base: String?
    @Option(help: "With --base: the scenario directory whose test split of --task to score.") var data: String?
    @Option(help: "With --base: the task of the test split (vqa, caption, grounding, or a custom task).") var task: String?
    @Option(help: "Round (default: the newest complete one).") var round: Int?
    @Option(help: "A shard file to score on (default: the client's task's test split).") var split: String?
    @Option(help: ArgumentHelp("Skip this many examples of the split first.",
                               discussion: "Pass the run's eval.first_example (and eval.max_examples) to rescore exactly the slice that `pilot train` scored, e.g. 200 for a tuning run."))
    var firstExample = 0
    @Option(help: "Score at most this many examples.") var maxExamples: Int?
    @Option(help: "Greedy decoding length cap.") var maxNewTokens = 16
    @Option(help: "Write the predictions as JSON {id: answer} here (for `pilot score`).") var predictions: String?

    func validate() throws {
        guard firstExample >= 0 else { throw ValidationError("--first-example must be 0 or more (got \(firstExample))") }
        if base != nil {
            guard runDirectory == nil, client == nil, round == nil else { throw ValidationError("--base scores the base checkpoint; leave out --run, --client and --round") }
            guard split != nil || (data != nil && task != nil) else { throw ValidationError("--base needs --split SHARD, or --data DIR and --task T") }
        } else {
            guard runDirectory != nil, client != nil else { throw ValidationError("give --run RUN and --client K (or --base BASE.h5 to score the base model)") }
            guard data == nil, task == nil else { throw ValidationError("--data and --task go with --base; a run's client is scored on its own task's test split, or on --split") }
        }
    }

    func run() throws {
        if let base { return try scoreBase(base) }
        let runDirectory = runDirectory!, client = client!
        let (model, codec, task, r) = try PersonalisedModel.load(run: runDirectory, round: round, client: client)
        let cfg = try String(contentsOfFile: runDirectory + "/config.toml", encoding: .utf8)
        let config = try RunSettings(RunConfig(effectiveFile: cfg, path: runDirectory + "/config.toml"))
        let scenario = try ScenarioDirectory(path: config.run.data)
        let shard: Shard
        if let split {
            shard = try Shard.read(path: split)
        } else {
            shard = try scenario.test(task)
        }
        guard firstExample == 0 || firstExample < shard.examples.count else {
            throw PilotError.message("--first-example \(firstExample) is past the end of \(split ?? scenario.testPath(task)) (\(shard.examples.count) examples): use a value below \(shard.examples.count)")
        }
        var examples = Array(shard.examples.dropFirst(firstExample))
        if let maxExamples { examples = Array(examples.prefix(maxExamples)) }
        guard let evalTask = examples.first?.task else { throw PilotError.message("the split has no examples") }
        let result: Evaluation.Result
        if model.variant == .dualLoRA {
            // FedDPA-T: each instance weighs the local LoRA by its similarity to the client's own training prompts.
            let batcher = try Batcher(config: model.config, codec: codec, truncate: true)
            let support = try batcher.prepare(Array(try scenario.client(client).examples.prefix(config.feddpa.support)))
            result = try FedDPAInference.evaluate(model: model, prepared: try batcher.prepare(examples), support: support, supportCount: support.count,
                                                  codec: codec, task: evalTask, batchSize: model.maxBatch,
                                                  maxNewTokens: maxNewTokens).evaluation
        } else {
            result = try Evaluation.evaluate(model: model, examples: examples, codec: codec, task: evalTask,
                                             maxNewTokens: maxNewTokens)
        }
        Console.out(String(format: "client %d (%@ model) round %d on %d %@ examples: %@ = %.6f", client, task.rawValue, r,
                           examples.count, evalTask.rawValue, "\(evalTask.metric)", result.metric.score))
        try writePredictions(examples, result)
    }

    /// The base model (MLP connector as pretrained, LoRA at its no-op init) on a split.
    func scoreBase(_ path: String) throws {
        let lm = try BaseCheckpoint.loadLM(basePath: path)
        let (model, codec) = try BaseCheckpoint.load(path: path, variant: .mlp, maxBatch: 32, base: lm)
        let shard: Shard, source: String
        if let split {
            shard = try Shard.read(path: split); source = split
        } else {
            let scenario = try ScenarioDirectory(path: data!)
            guard let t = scenario.tasks.first(where: { $0.rawValue == task! }) else {
                throw PilotError.message("--task \(task!): \(data!) has the tasks \(scenario.tasks.map(\.rawValue).joined(separator: ", "))")
            }
            shard = try scenario.test(t); source = scenario.testPath(t)
        }
        guard firstExample == 0 || firstExample < shard.examples.count else {
            throw PilotError.message("--first-example \(firstExample) is past the end of \(source) (\(shard.examples.count) examples): use a value below \(shard.examples.count)")
        }
        var examples = Array(shard.examples.dropFirst(firstExample))
        if let maxExamples { examples = Array(examples.prefix(maxExamples)) }
        guard let evalTask = examples.first?.task else { throw PilotError.message("\(source) has no examples") }
        let result = try Evaluation.evaluate(model: model, examples: examples, codec: codec, task: evalTask, maxNewTokens: maxNewTokens)
        Console.out(String(format: "base %@ on %d %@ examples: %@ = %.6f", path, examples.count, evalTask.rawValue,
                           "\(evalTask.metric)", result.metric.score))
        try writePredictions(examples, result)
    }

    func writePredictions(_ examples: [Example], _ result: Evaluation.Result) throws {
        guard let predictions else { return }
        var obj: [String: String] = [:]
        for (e, p) in zip(examples, result.predictions) { obj[e.id] = p }
        let data = try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys, .prettyPrinted])
        try data.write(to: URL(fileURLWithPath: predictions))
    }
}
