import ArgumentParser
import PilotCore
import PilotData

struct DataStatsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stats",
        abstract: "Print counts, answer distributions, vocabulary size and trivial baselines per task.",
        discussion: """
        Baselines are scored on each task's test split with its metric: majority (always the most \
        frequent training answer), random (a random option or training answer) and text-only (the most \
        frequent training answer for the same instruction). Trivial shortcuts show up here.
        """
    )

    @Argument(help: "Scenario directory written by `pilot data generate`.")
    var directory: String

    @Option(help: "Seed of the random baseline.")
    var seed: UInt64 = 0

    func run() throws {
        let d = try ScenarioDirectory(path: directory)
        let tok = try d.tokenizer()
        let clients = try (0..<d.clientCount).map { try d.client($0) }
        let pre = try d.pretrain()
        Console.out("scenario \(d.scenario.rawValue): \(d.clientCount) clients, tasks \(d.tasks.map(\.rawValue).joined(separator: ", "))")
        Console.out("clients: " + clients.enumerated().map { "\($0.offset):\($0.element.metadata.task)=\($0.element.examples.count)" }.joined(separator: " "))
        var preCounts: [FedTask: Int] = [:]
        for e in pre.examples { preCounts[e.task, default: 0] += 1 }
        Console.out("pretrain: \(pre.examples.count) examples (" + preCounts.keys.sorted().map { "\($0.rawValue) \(preCounts[$0]!)" }.joined(separator: ", ") + ")")
        var used = Set<String>()
        for e in clients.flatMap(\.examples) + pre.examples {
            for text in [e.instruction, e.answer] + e.references { for p in Tokenizer.pieces(text) { used.insert(p) } }
        }
        Console.out("vocabulary: \(tok.count) tokens in tokenizer.h5, \(used.count) distinct pieces used by clients + pretrain")
        for t in d.tasks {
            let train = clients.filter { $0.metadata.task == t.rawValue }.flatMap(\.examples)
            let stats = try TaskStats.compute(task: t, train: train, test: try d.test(t).examples, tokenizer: tok, seed: seed)
            Console.out(stats.text)
        }
    }
}
