import Foundation
import PilotCore

/// LLaVA instruction JSON with a folder of PNG images, both ways.
///
///     [{"id": "...", "image": "<file>.png",
///       "conversations": [{"from": "human", "value": "<image>\n<instruction>"},
///                         {"from": "gpt", "value": "<answer>"}]}]
///
/// Export also writes two keys LLaVA ignores, so that export → import gives back the same
/// shard: `references` (only when they are not just the answer, i.e. the 5 captions) and
/// `category`.
public enum LLaVAJSON {
    /// Writes `DIR/<jsonName>` and `DIR/images/<image id>` (PNG). Returns the JSON path.
    @discardableResult
    public static func export(_ examples: [Example], to dir: String, jsonName: String = "data.json") throws -> String {
        let imagesDir = dir + "/images"
        do { try FileManager.default.createDirectory(atPath: imagesDir, withIntermediateDirectories: true) }
        catch { throw PilotError.message("cannot create '\(imagesDir)': \(error.localizedDescription)") }
        var records: [String] = []
        for e in examples {
            let file = e.imageID.hasSuffix(".png") ? e.imageID : e.imageID + ".png"
            guard !file.contains("/") && !file.hasPrefix(".") else {
                throw PilotError.invalidArgument("example '\(e.id)': image id '\(e.imageID)' is not a plain file name")
            }
            try PNG.write(e.image, to: imagesDir + "/" + file)
            var fields = [
                "\"id\": \(jsonString(e.id))",
                "\"image\": \(jsonString(file))",
                "\"conversations\": [{\"from\": \"human\", \"value\": \(jsonString("<image>\n" + e.instruction))}, {\"from\": \"gpt\", \"value\": \(jsonString(e.answer))}]",
            ]
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

    /// Kinds of problems that make the importer reject a record.
    public enum Problem: String, CaseIterable, Sendable {
        case notAnObject = "record is not a JSON object"
        case missingID = "missing or empty id"
        case duplicateID = "duplicate id"
        case missingImageField = "no image field"
        case missingImage = "missing image"
        case unreadableImage = "unreadable image"
        case noConversations = "no conversations"
        case noImageTag = "no <image> tag"
        case noInstruction = "no human turn"
        case noAnswerTurn = "no answer turn"
        case emptyAnswer = "empty answer"
        case invalidAnswer = "answer does not fit the task"
    }

    /// Kinds of notes about records that are kept.
    public enum Warning: String, CaseIterable, Sendable {
        case extraTurns = "more than one exchange: only the first is kept"
        case resized = "image resized to the model size"
        case tooLong = "instruction + answer longer than the layout (truncated at training)"
        case unknownWords = "words outside the vocabulary (mapped to <unk>)"
    }

    public struct Issue: Equatable, Sendable {
        public var record: String
        public var detail: String
    }

    /// Everything the importer found, record by record. Nothing is skipped silently: every
    /// rejected record is in `problems` with its id (or `#index` when it has none).
    public struct ImportReport: Sendable {
        public var total = 0
        public var examples: [Example] = []
        public var problems: [(Problem, Issue)] = []
        public var warnings: [(Warning, Issue)] = []
        /// Pieces not in the tokenizer, with their counts (when a tokenizer was given).
        public var unknownWords: [String: Int] = [:]
        public var unknownWordCount = 0
        public var tokenizerChecked = false

        public var valid: Int { examples.count }
        public func count(_ p: Problem) -> Int { problems.filter { $0.0 == p }.count }
        public func count(_ w: Warning) -> Int { warnings.filter { $0.0 == w }.count }

        /// The report as text: one line per problem, then counts per kind.
        public var text: String {
            var lines: [String] = []
            for (p, i) in problems { lines.append("rejected '\(i.record)': \(p.rawValue)\(i.detail.isEmpty ? "" : ": " + i.detail)") }
            let shownWarnings = warnings.filter { $0.0 != .resized }
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
    /// is checked (image present and decodable, `<image>` tag, a human and a gpt turn, a
    /// non-empty answer that fits the task); bad records are reported, never dropped
    /// silently. Images are resized to `imageSize`×`imageSize`. Throws when the file cannot
    /// be read or when no valid record remains.
    public static func importFile(json path: String, images imagesDir: String, task: FedTask, imageSize: Int = 32,
                                  tokenizer: Tokenizer? = nil, layout: SequenceLayout = SequenceLayout()) throws -> ImportReport {
        guard let data = FileManager.default.contents(atPath: path) else { throw PilotError.notFound(file: path, object: "") }
        let root: Any
        do { root = try JSONSerialization.jsonObject(with: data) }
        catch { throw PilotError.message("'\(path)' is not valid JSON: \(error.localizedDescription)") }
        guard let records = root as? [Any] else {
            throw PilotError.message("'\(path)': expected a JSON array of records [{\"id\", \"image\", \"conversations\"}, …]")
        }
        var report = ImportReport()
        report.total = records.count
        report.tokenizerChecked = tokenizer != nil
        var seen = Set<String>()
        for (index, any) in records.enumerated() {
            var name = "#\(index)"
            func reject(_ p: Problem, _ detail: String = "") { report.problems.append((p, Issue(record: name, detail: detail))) }
            guard let r = any as? [String: Any] else { reject(.notAnObject); continue }
            let rawID: String? = (r["id"] as? String) ?? (r["id"] as? NSNumber).map { "\($0)" }
            guard let id = rawID, !id.isEmpty else { reject(.missingID, "record #\(index)"); continue }
            name = id
            guard seen.insert(id).inserted else { reject(.duplicateID); continue }
            guard let imageName = r["image"] as? String, !imageName.isEmpty else { reject(.missingImageField); continue }
            guard let turns = r["conversations"] as? [[String: Any]], !turns.isEmpty else { reject(.noConversations); continue }
            guard let humanIndex = turns.firstIndex(where: { ($0["from"] as? String) == "human" }),
                  let humanValue = turns[humanIndex]["value"] as? String else { reject(.noInstruction); continue }
            guard humanValue.contains("<image>") else { reject(.noImageTag, "human turn: \(String(humanValue.prefix(40)).debugDescription)"); continue }
            guard let gpt = turns[(humanIndex + 1)...].first(where: { ($0["from"] as? String) == "gpt" }),
                  let answerRaw = gpt["value"] as? String else { reject(.noAnswerTurn); continue }
            let answer = answerRaw.trimmingCharacters(in: .whitespacesAndNewlines)
            guard !answer.isEmpty else { reject(.emptyAnswer); continue }
            switch task {
            case .grounding where Metrics.parseBox(answer) == nil:
                reject(.invalidAnswer, "grounding needs a box [x1,y1,x2,y2], got \(answer.debugDescription)"); continue
            case .science where Metrics.choiceLetter(answer) == nil:
                reject(.invalidAnswer, "science needs a choice letter, got \(answer.debugDescription)"); continue
            default: break
            }
            let imagePath = imagesDir + "/" + imageName
            guard FileManager.default.fileExists(atPath: imagePath) else { reject(.missingImage, "\(imagePath) does not exist"); continue }
            var image: RGBImage
            do { image = try PNG.read(path: imagePath) }
            catch { reject(.unreadableImage, "\(error)"); continue }
            if image.width != imageSize || image.height != imageSize {
                report.warnings.append((.resized, Issue(record: id, detail: "\(image.width)x\(image.height)")))
                image = image.resized(width: imageSize, height: imageSize)
            }
            let instruction = humanValue.replacingOccurrences(of: "<image>", with: " ")
                .split(whereSeparator: { $0.isWhitespace }).joined(separator: " ")
            let refs = (r["references"] as? [String]).flatMap { $0.isEmpty ? nil : $0 } ?? [answer]
            let category = (r["category"] as? String) ?? "imported"
            if turns.count > humanIndex + 2 || turns.filter({ ($0["from"] as? String) == "human" }).count > 1 {
                report.warnings.append((.extraTurns, Issue(record: id, detail: "\(turns.count) turns")))
            }
            if let tok = tokenizer {
                let unknown = tok.unknownPieces(instruction) + tok.unknownPieces(answer)
                if !unknown.isEmpty {
                    report.unknownWordCount += unknown.count
                    for w in unknown { report.unknownWords[w, default: 0] += 1 }
                    report.warnings.append((.unknownWords, Issue(record: id, detail: Array(Set(unknown)).sorted().joined(separator: " "))))
                }
                let n = tok.encode(instruction).count + tok.encode(answer).count
                if n > layout.contentLength {
                    report.warnings.append((.tooLong, Issue(record: id, detail: "\(n) tokens, room for \(layout.contentLength)")))
                }
            }
            report.examples.append(Example(id: id, task: task, imageID: imageName, image: image, instruction: instruction,
                                           answer: answer, references: refs, category: category))
        }
        if report.examples.isEmpty {
            throw PilotError.message("import of '\(path)': no valid record among \(records.count)\n" + report.text)
        }
        return report
    }
}
