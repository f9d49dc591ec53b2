import ArgumentParser
import PilotCore
import PilotData

struct DataExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Export a shard as LLaVA instruction JSON plus a folder of PNG or JPEG images.",
        discussion: """
        Writes OUT/data.json ([{"id", "image", "conversations": [{"from": "human", "value": "<image>\\n..."}, \
        {"from": "gpt", "value": "..."}, …]}]) and OUT/images/<image id>. Multi-turn records keep all their \
        turns; text-only records have no "image". Caption records also carry their 5 "references"; every \
        record carries its "category". `pilot data import` (and `pilot data scenario`) read this back into the \
        same examples (exactly with PNG; JPEG is lossy).
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

    @Option(name: .customLong("image-format"), help: "Image files to write: png (lossless) or jpeg (libjpeg-turbo, 4:4:4).")
    var imageFormat: String = "png"

    @Option(name: .customLong("jpeg-quality"), help: "JPEG quality 1…100.")
    var jpegQuality: Int = 95

    func validate() throws {
        if let limit, limit < 1 { throw ValidationError("--limit must be at least 1") }
        guard !jsonName.contains("/") else { throw ValidationError("--json-name is a file name inside --out, without '/'") }
        guard ["png", "jpeg", "jpg"].contains(imageFormat) else { throw ValidationError("--image-format must be png or jpeg, not '\(imageFormat)'") }
        guard (1...100).contains(jpegQuality) else { throw ValidationError("--jpeg-quality must be within 1…100") }
    }

    func run() throws {
        let s = try Shard.read(path: shard)
        let examples = limit.map { Array(s.examples.prefix($0)) } ?? s.examples
        let format: ImageFormat = imageFormat == "png" ? .png : .jpeg
        let path = try LLaVAJSON.export(examples, to: out, jsonName: jsonName, imageFormat: format, jpegQuality: jpegQuality)
        Console.out("wrote \(path) and the \(format.rawValue.uppercased()) images of \(examples.count) records in \(out)/images")
    }
}
