import ArgumentParser
import PilotCore
import PilotData

struct DataExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Export a shard as LLaVA instruction JSON plus a folder of PNG images.",
        discussion: """
        Writes OUT/data.json ([{"id", "image", "conversations": [{"from": "human", "value": "<image>\\n..."}, \
        {"from": "gpt", "value": "..."}]}]) and OUT/images/<image id>. Caption records also carry their 5 \
        "references"; every record carries its "category". `pilot data import` reads this back into the same shard.
        """
    )

    @Option(help: "Shard file to export (a client, test or pretraining .h5).")
    var shard: String

    @Option(help: "Output directory.")
    var out: String

    @Option(name: .customLong("json-name"), help: "File name of the JSON inside --out.")
    var jsonName: String = "data.json"

    @Option(help: "Export only the first N examples.")
    var limit: Int?

    func validate() throws {
        if let limit, limit < 1 { throw ValidationError("--limit must be at least 1") }
        guard !jsonName.contains("/") else { throw ValidationError("--json-name is a file name inside --out, without '/'") }
    }

    func run() throws {
        let s = try Shard.read(path: shard)
        let examples = limit.map { Array(s.examples.prefix($0)) } ?? s.examples
        let path = try LLaVAJSON.export(examples, to: out, jsonName: jsonName)
        Console.out("wrote \(path) and \(examples.count) PNG files in \(out)/images")
    }
}
