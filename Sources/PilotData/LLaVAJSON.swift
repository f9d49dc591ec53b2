import Foundation
import PilotCore

/// LLaVA instruction JSON with a folder of JPEG or PNG images, both ways.
///
///     [{"id": "...", "image": "<file>.jpg",
///       "conversations": [{"from": "human", "value": "<image>\n<instruction>"},
///                         {"from": "gpt", "value": "<answer>"},
///                         {"from": "human", "value": "<follow-up>"}, {"from": "gpt", "value": "…"}]}]
///
/// Export also writes two keys LLaVA ignores, so that export → import gives back the same
/// shard: `references` (only when they are not just the answer, i.e. the 5 captions) and
/// `category`.
public enum LLaVAJSON {
    /// Writes `DIR/<jsonName>` and `DIR/images/<image file>` (PNG or JPEG). Multi-turn examples are
    /// written with all their turns, text-only ones without "image". Returns the JSON path.
    @discardableResult
    public static func export(_ examples: [Example], to dir: String, jsonName: String = "data.json",
                              imageFormat: ImageFormat = .png, jpegQuality: Int = 95) throws -> String {
        let imagesDir = dir + "/images"
        do { try FileManager.default.createDirectory(atPath: imagesDir, withIntermediateDirectories: true) }
        catch { throw PilotError.message("cannot create '\(imagesDir)': \(error.localizedDescription)") }
        var records: [String] = []
        var written = Set<String>()
        for e in examples {
            var fields = ["\"id\": \(jsonString(e.id))"]
            var firstHuman = e.instruction
            if !e.isTextOnly {
                let file = exportName(e.imageID, imageFormat)
                guard !file.contains("/") && !file.hasPrefix(".") else {
                    throw PilotError.invalidArgument("example '\(e.id)': image id '\(e.imageID)' is not a plain file name")
                }
                if written.insert(file).inserted {
                    switch imageFormat {
                    case .png: try PNG.write(e.image, to: imagesDir + "/" + file)
                    case .jpeg: try JPEG.write(e.image, to: imagesDir + "/" + file, quality: jpegQuality)
                    }
                }
                fields.append("\"image\": \(jsonString(file))")
                firstHuman = "<image>\n" + e.instruction
            }
            var turns = ["{\"from\": \"human\", \"value\": \(jsonString(firstHuman))}", "{\"from\": \"gpt\", \"value\": \(jsonString(e.answer))}"]
            for x in e.followUps {
                turns.append("{\"from\": \"human\", \"value\": \(jsonString(x.human))}")
                turns.append("{\"from\": \"gpt\", \"value\": \(jsonString(x.gpt))}")
            }
            fields.append("\"conversations\": [" + turns.joined(separator: ", ") + "]")
            if e.references != [e.answer] {
                fields.append("\"references\": [\(e.references.map(jsonString).joined(separator: ", "))]")
            }
            fields.append("\"category\": \(jsonString(e.category))")
            records.append("  {" + fields.joined(separator: ", ") + "}")
        }
        let text = "[\n" + records.joined(separator: ",\n") + "\n]\n"
        let path = dir + "/" + jsonName
        do { try Data(text.utf8).write(to: URL(fileURLWithPath: path), options: .atomic) }
        catch { throw PilotError.message("cannot write '\(path)': \(error.localizedDescription)") }
        return path
    }

    /// The file name an image id is exported under: kept when its extension fits the format,
    /// else the format's extension is added (`vqa-test-000001.png` → `vqa-test-000001.png.jpg`
    /// is avoided: a `.png`/`.jpg`/`.jpeg` extension is replaced).
    static func exportName(_ imageID: String, _ format: ImageFormat) -> String {
        let lower = imageID.lowercased()
        switch format {
        case .png:
            if lower.hasSuffix(".png") { return imageID }
            for ext in [".jpg", ".jpeg"] where lower.hasSuffix(ext) { return String(imageID.dropLast(ext.count)) + ".png" }
            return imageID + ".png"
        case .jpeg:
            if lower.hasSuffix(".jpg") || lower.hasSuffix(".jpeg") { return imageID }
            if lower.hasSuffix(".png") { return String(imageID.dropLast(4)) + ".jpg" }
            return imageID + ".jpg"
        }
    }

    /// Kinds of problems that make the importer reject a record.
    public enum Problem: String, CaseIterable, Sendable {
        case notAnObject = "record is not a JSON object"
        case missingID = "missing or empty id"
        case duplicateID = "duplicate id"
        case missingImageField = "no image field"
        case imageOutsideFolder = "image path leaves the images folder"
        case missingImage = "missing image"
        case imageTooLarge = "image too large"
        case unreadableImage = "unreadable image"
        case noConversations = "no conversations"
        case noImageTag = "no <image> tag"
        case misplacedImageTag = "<image> tag repeated or outside the first human turn"
        case noInstruction = "no human turn"
        case badTurns = "turns do not alternate human, gpt"
        case noAnswerTurn = "no answer turn"
        case emptyAnswer = "empty answer"
        case invalidAnswer = "answer does not fit the task"
    }

    /// Kinds of notes about records that are kept.
    public enum Warning: String, CaseIterable, Sendable {
        case multiTurn = "multi-turn conversation (every gpt turn is a training target)"
        case droppedTrailingTurn = "last human turn has no answer (that turn is dropped)"
        case textOnly = "text-only record (no image; a blank image of the pad colour stands in)"
        case extensionMismatch = "file extension does not match the content (decoded by content)"
        case resized = "image resized to the model size"
        case tooLong = "longer than the layout (cut at training: later exchanges, then instruction tokens)"
        case unknownWords = "words outside the vocabulary (mapped to <unk>)"
    }

    public struct Issue: Equatable, Sendable {
        public var record: String
        public var detail: String
    }

    /// How records become examples.
    public struct ImportOptions: Sendable {
        /// Side of the square model input.
        public var imageSize: Int
        /// How a non-square image becomes square (`ImageMode`).
        public var imageMode: ImageMode
        /// Decoding limits and the alpha background.
        public var decode: ImageDecodeOptions
        /// When given, unknown words are counted and too-long records flagged.
        public var tokenizer: Tokenizer?
        public var layout: SequenceLayout

        public init(imageSize: Int = 32, imageMode: ImageMode = .pad, decode: ImageDecodeOptions = ImageDecodeOptions(),
                    tokenizer: Tokenizer? = nil, layout: SequenceLayout = SequenceLayout()) {
            self.imageSize = imageSize; self.imageMode = imageMode; self.decode = decode
            self.tokenizer = tokenizer; self.layout = layout
        }
    }

    /// Everything the importer found, record by record. Nothing is skipped silently: every
    /// rejected record is in `problems` with its id (or `#index` when it has none).
    public struct ImportReport: Sendable {
        public var total = 0
        public var examples: [Example] = []
        /// The image format of each example ("jpeg", "png", or "none" for text-only), parallel to `examples`.
        public var imageFormats: [String] = []
        /// The JSON file each example came from, parallel to `examples`.
        public var sources: [String] = []
        public var problems: [(Problem, Issue)] = []
        public var warnings: [(Warning, Issue)] = []
        /// Pieces not in the tokenizer, with their counts (when a tokenizer was given).
        public var unknownWords: [String: Int] = [:]
        public var unknownWordCount = 0
        public var tokenizerChecked = false

        public init() {}

        public var valid: Int { examples.count }
        public func count(_ p: Problem) -> Int { problems.filter { $0.0 == p }.count }
        public func count(_ w: Warning) -> Int { warnings.filter { $0.0 == w }.count }

        /// The report as text: one line per problem, then counts per kind.
        public var text: String {
            var lines: [String] = []
            for (p, i) in problems { lines.append("rejected '\(i.record)': \(p.rawValue)\(i.detail.isEmpty ? "" : ": " + i.detail)") }
            let shownWarnings = warnings.filter { $0.0 != .resized && $0.0 != .multiTurn }
            for (w, i) in shownWarnings.prefix(50) { lines.append("warning '\(i.record)': \(w.rawValue)\(i.detail.isEmpty ? "" : ": " + i.detail)") }
            if shownWarnings.count > 50 { lines.append("… \(shownWarnings.count - 50) more warnings") }
            lines.append("records: \(total), imported: \(valid), rejected: \(problems.count)")
            for p in Problem.allCases where count(p) > 0 { lines.append("  \(p.rawValue): \(count(p))") }
            for w in Warning.allCases where count(w) > 0 { lines.append("  warning, \(w.rawValue): \(count(w))") }
            if tokenizerChecked {
                let top = unknownWords.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.prefix(10)
                lines.append("unknown words (mapped to <unk>): \(unknownWordCount) occurrences of \(unknownWords.count) words" +
                             (top.isEmpty ? "" : "; most frequent: " + top.map { "\($0.key) (\($0.value))" }.joined(separator: ", ")))
            } else {
                lines.append("unknown words: not counted (no tokenizer given)")
            }
            return lines.joined(separator: "\n")
        }
    }

    /// Reads and validates a LLaVA JSON file whose images live in `imagesDir`. Every record
    /// is checked (image inside the folder, present and decodable, `<image>` tag, alternating human
    /// and gpt turns, a non-empty first answer that fits the task); bad records are reported, never
    /// dropped silently. Images are resized to `imageSize`×`imageSize`. Throws when the file cannot
    /// be read or when no valid record remains.
    public static func importFile(json path: String, images imagesDir: String, task: FedTask, imageSize: Int = 32,
                                  tokenizer: Tokenizer? = nil, layout: SequenceLayout = SequenceLayout(),
                                  imageMode: ImageMode = .pad) throws -> ImportReport {
        var importer = try RecordImporter(images: imagesDir, options: ImportOptions(imageSize: imageSize, imageMode: imageMode,
                                                                                   tokenizer: tokenizer, layout: layout))
        var report = ImportReport()
        try importer.importFile(json: path, task: task, into: &report)
        if report.examples.isEmpty {
            throw PilotError.message("import of '\(path)': no valid record among \(report.total)\n" + report.text)
        }
        return report
    }

    /// Reads a JSON file as an array of records, with errors a person can act on: the byte offset of
    /// the first invalid UTF-8 byte, the parser's position of a syntax error, the file size when it ends early.
    public static func readRecords(json path: String) throws -> [Any] {
        guard let data = FileManager.default.contents(atPath: path) else { throw PilotError.notFound(file: path, object: "") }
        let bytes = [UInt8](data)
        if let bad = firstInvalidUTF8(bytes) {
            let line = bytes[..<bad].filter { $0 == 0x0A }.count + 1
            throw PilotError.message("'\(path)' is not UTF-8: invalid byte 0x\(String(bytes[bad], radix: 16)) at byte offset \(bad) (line \(line)); save the file as UTF-8")
        }
        let root: Any
        do { root = try JSONSerialization.jsonObject(with: data) }
        catch {
            let ns = error as NSError
            let detail = (ns.userInfo[NSDebugDescriptionErrorKey] as? String) ?? ns.localizedDescription
            throw PilotError.message("'\(path)' is not valid JSON (\(bytes.count) bytes): \(detail)\(unbalancedHint(bytes))")
        }
        guard let records = root as? [Any] else {
            throw PilotError.message("'\(path)': expected a JSON array of records [{\"id\", \"image\", \"conversations\"}, …]")
        }
        return records
    }

    /// " — it ends inside …" when brackets or a string are still open at the end (a truncated file).
    static func unbalancedHint(_ b: [UInt8]) -> String {
        var depth = 0, inString = false, escaped = false
        for c in b {
            if inString {
                if escaped { escaped = false } else if c == 0x5C { escaped = true } else if c == 0x22 { inString = false }
                continue
            }
            switch c {
            case 0x22: inString = true
            case 0x5B, 0x7B: depth += 1
            case 0x5D, 0x7D: depth -= 1
            default: break
            }
        }
        if inString { return "; the file ends inside a string at byte \(b.count): it looks truncated" }
        if depth > 0 { return "; the file ends with \(depth) bracket(s) still open at byte \(b.count): it looks truncated" }
        return ""
    }

    /// Offset of the first byte that breaks UTF-8, or nil.
    static func firstInvalidUTF8(_ b: [UInt8]) -> Int? {
        var i = 0
        while i < b.count {
            let c = b[i]
            let n: Int
            if c < 0x80 { i += 1; continue }
            else if c >= 0xC2 && c <= 0xDF { n = 1 }
            else if c >= 0xE0 && c <= 0xEF { n = 2 }
            else if c >= 0xF0 && c <= 0xF4 { n = 3 }
            else { return i }
            for j in 1...n { if i + j >= b.count || b[i + j] & 0xC0 != 0x80 { return i } }
            i += n + 1
        }
        return nil
    }
}
