import ArgumentParser
import PilotCore
import PilotData

struct DataImportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Import LLaVA instruction JSON + JPEG/PNG images into one shard, validating every record.",
        discussion: """
        Each record needs an id, a human turn and a non-empty gpt answer (a box for grounding, a letter for \
        science). With an "image", the first human turn carries the <image> tag (at its start or end) and the \
        file must lie inside --images and be a readable JPEG or PNG (recognised by content, not extension); a \
        record without image and tag is text-only (kept, flagged). Every turn is kept: all gpt turns are \
        training targets. Rejected records are listed with their id and counted; nothing is skipped \
        silently. With --tokenizer, words outside the vocabulary are counted (they become <unk>). Fails when \
        no valid record remains. To make a whole scenario for `pilot train`, use `pilot data scenario`.
        Example: pilot data import --json llava.json --images imgs --task vqa --out vqa.h5
        """
    )

    @Option(help: "LLaVA JSON file.")
    var json: String

    @Option(help: "Folder the records' \"image\" paths are relative to (no path may leave it).")
    var images: String

    @Option(help: "Task of the data: caption, vqa, grounding, ocr or science.")
    var task: String

    @Option(help: "Shard file to write.")
    var out: String

    @OptionGroup var image: DataImageOptions

    @Option(help: "Tokenizer file (for example DIR/tokenizer.h5 of a scenario) to count unknown words with.")
    var tokenizer: String?

    func validate() throws {
        guard FedTask(rawValue: task) != nil else {
            throw ValidationError("--task must be one of \(FedTask.allCases.map(\.rawValue).joined(separator: ", ")), not '\(task)'")
        }
    }

    func run() throws {
        let tok = try tokenizer.map { try Tokenizer.load(path: $0) }
        var importer = try RecordImporter(images: images, options: try image.importOptions(tokenizer: tok))
        var report = LLaVAJSON.ImportReport()
        try importer.importFile(json: json, task: try FedTask.parse(task), into: &report)
        Console.out(report.text)
        guard !report.examples.isEmpty else {
            throw PilotError.message("import of '\(json)': no valid record among \(report.total); nothing written")
        }
        let shard = Shard(metadata: ShardMetadata(split: "imported", task: task, source: "llava-json \(json)"), examples: report.examples)
        try shard.write(to: out)
        Console.out("wrote \(out): \(report.valid) examples")
    }
}
