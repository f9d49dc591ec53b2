import ArgumentParser
import Foundation
import PilotCore
import PilotData

struct DataGenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Write a deterministic FedMIT scenario: 9 client shards, test splits, pretraining split, tokenizer.",
        discussion: """
        vu = vqa + caption + grounding, gvqa = science + vqa + ocr; each task's training pool is split \
        among --clients-per-task clients (3 in the paper). The same seed gives byte-identical files.
        Layout: DIR/scenario.json, DIR/tokenizer.h5, DIR/pretrain.h5, DIR/clients/client-KK.h5, DIR/test/<task>.h5.
        """
    )

    @Option(help: "Scenario: vu (vqa, caption, grounding) or gvqa (science, vqa, ocr).")
    var scenario: String

    @Option(help: "Output directory (created if missing; existing files are replaced atomically).")
    var out: String

    @Option(help: "Random seed (unsigned 64-bit).")
    var seed: UInt64 = 0

    @Option(help: "Size preset: tiny (tests), small (demo) or paper.")
    var size: String = "small"

    @Option(name: .customLong("image-size"), help: "Side of the square RGB images in pixels.")
    var imageSize: Int = 32

    @Option(help: "How each task's pool is divided among its clients: random or dirichlet.")
    var split: String = "random"

    @Option(help: "Dirichlet concentration for --split dirichlet (smaller = more skewed).")
    var alpha: Double = 0.5

    @Option(name: .customLong("clients-per-task"), help: "Clients per task.")
    var clientsPerTask: Int = 3

    @Option(name: .customLong("per-client"), help: "Examples per client (overrides the preset).")
    var perClient: Int?

    @Option(name: .customLong("test-size"), help: "Test examples per task (overrides the preset).")
    var testSize: Int?

    @Option(name: .customLong("pretrain-size"), help: "Examples in the pretraining split (overrides the preset).")
    var pretrainSize: Int?

    @Option(name: .customLong("pretrain-mix"),
            help: "Task shares of the pretraining split as task=weight,… (default: half captions and half the tasks no client of the scenario owns, i.e. vu caption=0.5,ocr=0.25,science=0.25 and gvqa caption=0.5,grounding=0.5; caption=1 is a caption-only alignment split).")
    var pretrainMix: String?

    @Option(name: .customLong("task-version"),
            help: "Definition of the tasks: 1 (as first released; docs/results.md uses it) or 2 (calibrated for the reference model: grounding boxes on the 4×4 patch grid; science facts from one fixed world, answered with the option's text; docs/calibration.md §6).")
    var taskVersion: String = "1"

    /// Parses --pretrain-mix into task → weight.
    func parsedMix() throws -> [FedTask: Double]? {
        guard let pretrainMix else { return nil }
        var mix: [FedTask: Double] = [:]
        for part in pretrainMix.split(separator: ",") {
            let kv = part.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard kv.count == 2, let task = FedTask(rawValue: kv[0]), let w = Double(kv[1]), w >= 0 else {
                throw ValidationError("--pretrain-mix: '\(part)' is not task=weight with a task of \(FedTask.allCases.map(\.rawValue).joined(separator: ", ")) and a weight ≥ 0")
            }
            mix[task] = w
        }
        guard mix.values.reduce(0, +) > 0 else { throw ValidationError("--pretrain-mix: the weights sum to 0") }
        return mix
    }

    func validate() throws {
        guard Scenario(rawValue: scenario) != nil else { throw ValidationError("--scenario must be vu or gvqa, not '\(scenario)'") }
        guard SizePreset(rawValue: size) != nil else { throw ValidationError("--size must be tiny, small or paper, not '\(size)'") }
        guard ["random", "dirichlet"].contains(split) else { throw ValidationError("--split must be random or dirichlet, not '\(split)'") }
        guard alpha > 0 else { throw ValidationError("--alpha must be > 0") }
        guard (16...512).contains(imageSize) else { throw ValidationError("--image-size must be within 16…512") }
        guard clientsPerTask >= 1 else { throw ValidationError("--clients-per-task must be at least 1") }
        for (name, v) in [("--per-client", perClient), ("--test-size", testSize), ("--pretrain-size", pretrainSize)] {
            if let v, v < 1 { throw ValidationError("\(name) must be at least 1") }
        }
        _ = try parsedMix()
        do { _ = try TaskVersion.parse(taskVersion) } catch { throw ValidationError("--task-version must be 1 or 2, not '\(taskVersion)'") }
    }

    func run() throws {
        var config = try ScenarioConfig(
            scenario: try Scenario.parse(scenario), seed: seed, size: SizePreset(rawValue: size)!, imageSize: imageSize,
            clientsPerTask: clientsPerTask, split: split == "random" ? .random : .dirichlet(alpha: alpha),
            perClient: perClient, testPerTask: testSize, pretrainCount: pretrainSize)
        if let mix = try parsedMix() { config.pretrainMix = mix }
        config.taskVersion = try TaskVersion.parse(taskVersion)
        let start = Date()
        let generated = try ScenarioGenerator.generate(config)
        try ScenarioGenerator.write(generated, to: out)
        let sizes = generated.clients.map(\.examples.count)
        // many clients: the range, not one number per client
        let counts = sizes.count <= 12 ? sizes.map(String.init).joined(separator: " ")
            : sizes.min() == sizes.max() ? "\(sizes[0]) examples each" : "\(sizes.min()!)–\(sizes.max()!) examples, \(sizes.reduce(0, +)) in all"
        Console.out("wrote \(out): scenario \(scenario), seed \(seed), \(generated.clients.count) clients (\(counts)\(sizes.count <= 12 ? " examples" : "")), "
            + "test \(config.scenario.tasks.map { "\($0.rawValue) \(generated.tests[$0]!.examples.count)" }.joined(separator: ", ")), "
            + "pretrain \(generated.pretrain.examples.count), vocabulary \(generated.tokenizer.count) tokens, "
            + "\(fixed(Date().timeIntervalSince(start), 2)) s")
    }
}
