import ArgumentParser
import PilotCore
import PilotData

struct DataImportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Import LLaVA instruction JSON + images into a shard, validating every record.",
        discussion: """
        Each record needs an id, an existing readable image (PNG), a human turn with the <image> tag \
        and a non-empty gpt answer (a box for grounding, a letter for science). Rejected records are \
        listed with their id and counted; nothing is skipped silently. Images are resized to \
        --image-size. With --tokenizer, words outside the vocabulary are counted (they become <unk>). \
        Fails when no valid record remains.
        """
    )

    @Option(help: "LLaVA JSON file.")
    var json: String

    @Option(help: "Folder the records' \"image\" paths are relative to.")
    var images: String

    @Option(help: "Task of the data: caption, vqa, grounding, ocr or science.")
    var task: String

    @Option(help: "Shard file to write.")
    var out: String

    @Option(name: .customLong("image-size"), help: "Side the images are resized to (the model's input size).")
    var imageSize: Int = 32

    @Option(help: "Tokenizer file (for example DIR/tokenizer.h5 of a scenario) to count unknown words with.")
    var tokenizer: String?

    func validate() throws {
        guard FedTask(rawValue: task) != nil else {
            throw ValidationError("--task must be one of \(FedTask.allCases.map(\.rawValue).joined(separator: ", ")), not '\(task)'")
        }
        guard (16...512).contains(imageSize) else { throw ValidationError("--image-size must be within 16…512") }
    }

    func run() throws {
        let tok = try tokenizer.map { try Tokenizer.load(path: $0) }
        let report = try LLaVAJSON.importFile(json: json, images: images, task: try FedTask.parse(task),
                                              imageSize: imageSize, tokenizer: tok)
        Console.out(report.text)
        let shard = Shard(metadata: ShardMetadata(split: "imported", task: task, source: "llava-json \(json)"), examples: report.examples)
        try shard.write(to: out)
        Console.out("wrote \(out): \(report.valid) examples")
    }
}
