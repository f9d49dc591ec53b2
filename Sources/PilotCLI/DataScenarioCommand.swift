import ArgumentParser
import Foundation
import PilotCore
import PilotData

struct DataScenarioCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scenario",
        abstract: "Build a scenario directory for `pilot pretrain` and `pilot train` from your LLaVA JSON files and images.",
        discussion: """
        Every --task names a task, a LLaVA JSON file of its records and, optionally, the metric its test split \
        is scored with (exact_match, vqa_accuracy, anls, cider_d, acc_iou50, choice_accuracy; the built-in names \
        caption, vqa, grounding, ocr and science keep their own; a new name defaults to exact_match). Repeat \
        --task NAME=… to add several files to one task.

        Every record is validated as `pilot data import` does (each rejection is named with its file and id); \
        ids must be unique across all files. Each task's test split is --test NAME=FILE, or --test-fraction of \
        its records; the public pretraining split is --pretrain FILE, or --pretrain-fraction of every task's \
        records. Test and pretraining records are drawn by image, so no image is in two splits of a task. \
        The remaining records are split among --clients-per-task clients (random or dirichlet), or by owner \
        with --clients FILE.json ({"record id": "client name"}). The word-level tokenizer is built from all \
        the data's words, up to --max-vocab; what the limit leaves out is reported.

        Output, written to a temporary folder and renamed at the end: OUT/scenario.json, OUT/tokenizer.h5, \
        OUT/pretrain.h5, OUT/clients/client-KK.h5, OUT/test/<task>.h5 and OUT/import-report.txt. The same \
        inputs and seed give the same files.

        Example:
          pilot data scenario --task textvqa=tv.json:vqa_accuracy --task docs=docs.json:anls \\
            --task caption=cap.json --images imgs --out data/mine --split dirichlet --alpha 0.5
          scripts/mpirun.sh -np 2 .build/release/pilot pretrain --data data/mine --out data/mine/base.h5
        """
    )

    @Option(name: .customLong("task"), help: ArgumentHelp("A task: NAME=FILE.json[:METRIC]. Repeatable.", valueName: "name=file[:metric]"))
    var taskSpecs: [String] = []

    @Option(help: "Folder the records' \"image\" paths are relative to (no path may leave it).")
    var images: String

    @Option(help: "Scenario directory to write (refused if it exists, unless --force).")
    var out: String

    @Flag(help: "Replace --out if it exists (the old folder is removed only after the new one is complete).")
    var force = false

    @Option(name: .customLong("name"), help: "Scenario name recorded in the manifest and in every run's metrics.")
    var name: String = "custom"

    @Option(name: .customLong("clients-per-task"), help: "Clients per task (ignored with --clients).")
    var clientsPerTask: Int = 3

    @Option(help: ArgumentHelp("JSON object mapping record ids to client names, for data already split by owner.", valueName: "file.json"))
    var clients: String?

    @Option(help: "How each task's training records are divided among its clients: random or dirichlet.")
    var split: String = "random"

    @Option(help: "Dirichlet concentration for --split dirichlet (smaller = more skewed).")
    var alpha: Double = 0.5

    @Option(name: .customLong("test-fraction"), help: "Share of a task's records that becomes its test split (when no --test is given for it).")
    var testFraction: Double = 0.2

    @Option(name: .customLong("test"), help: ArgumentHelp("A task's test split from its own file: NAME=FILE.json. Repeatable.", valueName: "name=file"))
    var testSpecs: [String] = []

    @Option(name: .customLong("pretrain"), help: ArgumentHelp("Public pretraining records (LLaVA JSON). Repeatable. Without it, --pretrain-fraction of every task is carved off.", valueName: "file.json"))
    var pretrainFiles: [String] = []

    @Option(name: .customLong("pretrain-fraction"), help: "Share of each task's records carved off as the pretraining split (when no --pretrain is given).")
    var pretrainFraction: Double = 0.1

    @Option(help: "Seed of the splits (unsigned 64-bit).")
    var seed: UInt64 = 0

    @Option(name: .customLong("eval-turn"), help: "Which answer of a multi-turn test record is scored: first, last (earlier turns as context) or all (one test item per answer).")
    var evalTurn: String = "first"

    @Option(name: .customLong("max-vocab"), help: "Largest tokenizer (the model's vocab_size: 512 for the tiny model).")
    var maxVocab: Int = 512

    @Option(name: .customLong("text-length"), help: "Text tokens of the model's sequence (context 64 − 16 visual tokens for the tiny model); longer records are reported.")
    var textLength: Int = 48

    @OptionGroup var image: DataImageOptions

    static func parseSource(_ s: String, flag: String, allowMetric: Bool) throws -> ScenarioBuildSpec.Source {
        guard let eq = s.firstIndex(of: "="), eq != s.startIndex, s.index(after: eq) != s.endIndex else {
            throw ValidationError("--\(flag) '\(s)': expected NAME=FILE.json\(allowMetric ? "[:METRIC]" : "")")
        }
        let name = String(s[..<eq])
        var file = String(s[s.index(after: eq)...])
        var metric: MetricKind? = nil
        if allowMetric, let colon = file.lastIndex(of: ":"), let m = MetricKind(rawValue: String(file[file.index(after: colon)...])) {
            metric = m
            file = String(file[..<colon])
        } else if allowMetric, let colon = file.lastIndex(of: ":"), !file[file.index(after: colon)...].contains("/"),
                  !file[file.index(after: colon)...].contains(".") {
            throw ValidationError("--task '\(s)': unknown metric '\(file[file.index(after: colon)...])'; expected one of \(MetricKind.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        do { _ = try FedTask(name: name, metric: metric ?? FedTask(rawValue: name)?.metric ?? .exactMatch) }
        catch { throw ValidationError("--\(flag) '\(s)': \(error)") }
        return ScenarioBuildSpec.Source(task: name, file: file, metric: metric)
    }

    func validate() throws {
        guard !taskSpecs.isEmpty else { throw ValidationError("give at least one --task NAME=FILE.json[:METRIC]") }
        for t in taskSpecs { _ = try Self.parseSource(t, flag: "task", allowMetric: true) }
        for t in testSpecs { _ = try Self.parseSource(t, flag: "test", allowMetric: false) }
        guard ["random", "dirichlet"].contains(split) else { throw ValidationError("--split must be random or dirichlet, not '\(split)'") }
        guard alpha > 0 else { throw ValidationError("--alpha must be > 0") }
        guard clientsPerTask >= 1 else { throw ValidationError("--clients-per-task must be at least 1") }
        guard (0..<1).contains(testFraction), (0..<1).contains(pretrainFraction), testFraction + pretrainFraction < 1 else {
            throw ValidationError("--test-fraction and --pretrain-fraction must be in [0, 1) and sum to less than 1")
        }
        guard EvalTurn(rawValue: evalTurn) != nil else { throw ValidationError("--eval-turn must be first, last or all, not '\(evalTurn)'") }
        guard maxVocab >= 200 else { throw ValidationError("--max-vocab must be at least 200 (the fixed tokens take about 125)") }
        guard textLength >= 8 else { throw ValidationError("--text-length must be at least 8") }
    }

    func run() throws {
        let start = Date()
        var spec = ScenarioBuildSpec(tasks: try taskSpecs.map { try Self.parseSource($0, flag: "task", allowMetric: true) }, images: images)
        spec.tests = try testSpecs.map { try Self.parseSource($0, flag: "test", allowMetric: false) }
        spec.pretrain = pretrainFiles
        spec.clientsPerTask = clientsPerTask
        spec.clientsFile = clients
        spec.split = split == "random" ? .random : .dirichlet(alpha: alpha)
        spec.testFraction = testFraction
        spec.pretrainFraction = pretrainFraction
        spec.seed = seed
        spec.name = name
        var options = try image.importOptions()
        options.layout = SequenceLayout(textLength: textLength)
        spec.importOptions = options
        spec.evalTurn = try EvalTurn.parse(evalTurn)
        spec.tokenizer = .wordLevel(maxSize: maxVocab)
        let built = try ScenarioBuilder.build(spec) { Console.out($0) }
        for r in built.reports where !r.report.problems.isEmpty || r.report.warnings.contains(where: { $0.0 != .resized && $0.0 != .multiTurn }) {
            Console.out("== \(r.file) (task \(r.task))\n" + r.report.text)
        }
        try ScenarioBuilder.write(built, to: out, replace: force)
        Console.out(ScenarioBuilder.vocabularyNote(built))
        if !built.tooLong.isEmpty {
            Console.out("longer than the \(textLength)-token layout (cut at training): "
                + built.tooLong.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
        }
        Console.out(built.summary)
        Console.out(String(format: "wrote %@: %d tasks, %d clients, %d test items, %d pretraining records (%@), %.1f s; the full report is in %@/import-report.txt",
                           out, built.tasks.count, built.clients.count, built.tests.values.map(\.examples.count).reduce(0, +),
                           built.pretrain.examples.count, built.pretrainSource, Date().timeIntervalSince(start), out))
        Console.out("next: scripts/mpirun.sh -np 2 pilot pretrain --data \(out) --out \(out)/base.h5, then a config with run.data = \(out) and `pilot train` under mpirun -np \(built.clients.count + 1)")
    }
}
