import ArgumentParser
import PilotCore
import PilotData

struct DataPreviewCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "preview",
        abstract: "Write a contact-sheet PNG of a few examples per task with their instructions and answers.",
        discussion: "Reads a scenario directory's test splits (or --split train: the clients) or the given --shard files. Grounding boxes are outlined in green."
    )

    @Argument(help: "Scenario directory (omit when using --shard).")
    var directory: String?

    @Option(help: "Shard file(s) to preview instead of a scenario directory.")
    var shard: [String] = []

    @Option(help: "Output PNG file.")
    var out: String

    @Option(name: .customLong("per-task"), help: "Examples per task.")
    var perTask: Int = 3

    @Option(help: "Only this task.")
    var task: String?

    @Option(help: "Scenario split to show: test or train (the clients' shards).")
    var split: String = "test"

    @Option(help: "Integer enlargement of the images.")
    var scale: Int = 4

    func validate() throws {
        guard (directory == nil) != shard.isEmpty else { throw ValidationError("give a scenario directory or --shard files (one of the two)") }
        guard perTask >= 1 else { throw ValidationError("--per-task must be at least 1") }
        guard (1...16).contains(scale) else { throw ValidationError("--scale must be within 1…16") }
        guard ["test", "train"].contains(split) else { throw ValidationError("--split must be test or train") }
        if let task, FedTask(rawValue: task) == nil { throw ValidationError("unknown --task '\(task)'") }
    }

    func run() throws {
        var byTask: [FedTask: [Example]] = [:]
        if let directory {
            let d = try ScenarioDirectory(path: directory)
            for t in d.tasks {
                if split == "test" { byTask[t] = try d.test(t).examples }
                else { byTask[t] = try (0..<d.clientCount).filter { d.clientTasks[$0] == t }.flatMap { try d.client($0).examples } }
            }
        } else {
            for f in shard { for e in try Shard.read(path: f).examples { byTask[e.task, default: []].append(e) } }
        }
        let only = task.flatMap(FedTask.init(rawValue:))
        let sections = byTask.keys.sorted().filter { only == nil || $0 == only }.map { t in
            (title: t.rawValue, examples: Array(byTask[t]!.prefix(perTask)))
        }
        guard !sections.isEmpty else { throw PilotError.invalidArgument("no examples to preview\(only.map { " for task \($0.rawValue)" } ?? "")") }
        let sheet = ContactSheet.render(sections, options: ContactSheet.Options(scale: scale))
        try PNG.write(sheet, to: out)
        Console.out("wrote \(out) (\(sheet.width)x\(sheet.height)): \(sections.map { "\($0.title) \($0.examples.count)" }.joined(separator: ", "))")
    }
}
