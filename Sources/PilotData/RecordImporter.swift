import Foundation
import PilotCore

/// Turns LLaVA records into examples, one file after another, with one set of seen ids (so a
/// duplicate across files is caught) and one images folder that no path may leave.
public struct RecordImporter {
    public let imagesDir: String
    public let options: LLaVAJSON.ImportOptions
    /// Every id seen so far, with the file it came from.
    public private(set) var seen: [String: String] = [:]
    let realImagesDir: String

    public init(images imagesDir: String, options: LLaVAJSON.ImportOptions) throws {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: imagesDir, isDirectory: &isDir), isDir.boolValue else {
            throw PilotError.message("images folder '\(imagesDir)' does not exist or is not a folder; pass --images DIR, the folder the records' \"image\" paths are relative to")
        }
        self.imagesDir = imagesDir
        self.options = options
        realImagesDir = URL(fileURLWithPath: imagesDir).standardizedFileURL.resolvingSymlinksInPath().path
    }

    /// Imports every record of `path` as examples of `task` into `report`.
    public mutating func importFile(json path: String, task: FedTask, into report: inout LLaVAJSON.ImportReport) throws {
        let records = try LLaVAJSON.readRecords(json: path)
        report.total += records.count
        report.tokenizerChecked = options.tokenizer != nil
        for (index, any) in records.enumerated() { process(any, index: index, file: path, task: task, into: &report) }
    }

    /// The images folder's file for `name`, or nil when the path would leave the folder (absolute,
    /// `..`, or a symbolic link that points outside).
    func resolve(_ name: String) -> String? {
        guard !name.hasPrefix("/"), !name.split(separator: "/").contains("..") else { return nil }
        let path = imagesDir + "/" + name
        let real = URL(fileURLWithPath: path).standardizedFileURL.resolvingSymlinksInPath().path
        guard real.hasPrefix(realImagesDir + "/") else { return nil }
        return path
    }

    static func normaliseRole(_ r: String?) -> String? {
        switch r?.lowercased() {
        case "human"?, "user"?: return "human"
        case "gpt"?, "assistant"?: return "gpt"
        default: return nil
        }
    }

    mutating func process(_ any: Any, index: Int, file: String, task: FedTask, into report: inout LLaVAJSON.ImportReport) {
        var name = "#\(index)"
        func reject(_ p: LLaVAJSON.Problem, _ detail: String = "") { report.problems.append((p, LLaVAJSON.Issue(record: name, detail: detail))) }
        func warn(_ w: LLaVAJSON.Warning, _ detail: String = "") { report.warnings.append((w, LLaVAJSON.Issue(record: name, detail: detail))) }
        guard let r = any as? [String: Any] else { reject(.notAnObject, "record #\(index) of \(file)"); return }
        let rawID: String? = (r["id"] as? String) ?? (r["id"] as? NSNumber).map { "\($0)" }
        guard let id = rawID, !id.isEmpty else { reject(.missingID, "record #\(index) of \(file)"); return }
        name = id
        if let other = seen[id] {
            reject(.duplicateID, other == file ? "appears twice in \(file)" : "in \(file) and in \(other)")
            return
        }
        seen[id] = file
        let imageName = r["image"] as? String
        guard let rawTurns = r["conversations"] as? [[String: Any]], !rawTurns.isEmpty else { reject(.noConversations); return }
        // Turns: human/gpt (user/assistant accepted), alternating, starting with human.
        var turns: [(role: String, value: String)] = []
        for (i, t) in rawTurns.enumerated() {
            guard let role = Self.normaliseRole(t["from"] as? String), let value = t["value"] as? String else {
                if i == 0 { reject(.noInstruction, "turn 1 has from \((t["from"] as? String).map { "'\($0)'" } ?? "missing") (expected human or gpt) or no string value") }
                else { reject(.badTurns, "turn \(i + 1): from \((t["from"] as? String).map { "'\($0)'" } ?? "missing"), expected human or gpt with a string value") }
                return
            }
            turns.append((role, value))
        }
        guard turns[0].role == "human" else { reject(.noInstruction, "the first turn is from gpt"); return }
        for i in 1..<max(1, turns.count) where turns[i].role == turns[i - 1].role {
            reject(.badTurns, "turns \(i) and \(i + 1) are both \(turns[i].role)")
            return
        }
        guard turns.count >= 2 else { reject(.noAnswerTurn); return }
        if turns.count % 2 == 1 {
            warn(.droppedTrailingTurn, "turn \(turns.count)")
            turns.removeLast()
        }
        // <image>: once, in the first human turn (at its start or end, or anywhere: it is taken out).
        let tagCounts = turns.map { $0.value.components(separatedBy: "<image>").count - 1 }
        if tagCounts.reduce(0, +) > 1 || tagCounts.dropFirst().contains(where: { $0 > 0 }) {
            reject(.misplacedImageTag, "\(tagCounts.reduce(0, +)) tags in turns \(tagCounts.enumerated().filter { $0.element > 0 }.map { String($0.offset + 1) }.joined(separator: ", "))")
            return
        }
        let hasTag = tagCounts[0] == 1
        if let imageName, !imageName.isEmpty {
            guard hasTag else { reject(.noImageTag, "human turn: \(String(turns[0].value.prefix(40)).debugDescription)"); return }
        } else if hasTag {
            reject(.missingImageField, "the human turn has <image> but the record has no \"image\"")
            return
        }
        func clean(_ s: String) -> String {
            s.replacingOccurrences(of: "<image>", with: " ").split(whereSeparator: { $0.isWhitespace }).joined(separator: " ")
        }
        var exchanges: [Exchange] = []
        for i in stride(from: 0, to: turns.count, by: 2) {
            let gpt = turns[i + 1].value.trimmingCharacters(in: .whitespacesAndNewlines)
            guard !gpt.isEmpty else { reject(.emptyAnswer, i == 0 ? "" : "turn \(i + 2)"); return }
            exchanges.append(Exchange(human: clean(turns[i].value), gpt: gpt))
        }
        let answer = exchanges[0].gpt
        if task == .grounding || task.metric == .accAtIoU50, Metrics.parseBox(answer) == nil {
            reject(.invalidAnswer, "\(task.rawValue) needs a box [x1,y1,x2,y2], got \(answer.debugDescription)"); return
        }
        if task == .science, Metrics.choiceLetter(answer) == nil {
            reject(.invalidAnswer, "science needs a choice letter, got \(answer.debugDescription)"); return
        }
        // The image: inside the folder, present, a JPEG or PNG under the size limit.
        var image: RGBImage
        var format = "none"
        let size = options.imageSize
        if let imageName, !imageName.isEmpty {
            guard let imagePath = resolve(imageName) else {
                reject(.imageOutsideFolder, "\(imageName.debugDescription) is outside \(imagesDir); refused, not read"); return
            }
            guard FileManager.default.fileExists(atPath: imagePath) else { reject(.missingImage, "\(imagePath) does not exist"); return }
            let decoded: DecodedImage
            do { decoded = try ImageDecoder.read(path: imagePath, options: options.decode) }
            catch {
                let text = "\(error)"
                reject(text.contains("over the limit") ? .imageTooLarge : .unreadableImage, text); return
            }
            format = decoded.format.rawValue
            let ext = (imageName as NSString).pathExtension.lowercased()
            let expected: [String: ImageFormat] = ["jpg": .jpeg, "jpeg": .jpeg, "png": .png]
            if let e = expected[ext], e != decoded.format {
                warn(.extensionMismatch, "\(imageName) is a \(decoded.format.rawValue.uppercased()) file")
            }
            image = decoded.image
            if image.width != size || image.height != size {
                warn(.resized, "\(image.width)x\(image.height)")
                image = ImageFit.fit(image, size: size, mode: options.imageMode)
            }
        } else {
            warn(.textOnly)
            image = RGBImage(width: size, height: size, fill: ImageFit.llavaMean)
        }
        let refs = (r["references"] as? [String]).flatMap { $0.isEmpty ? nil : $0 } ?? [answer]
        let category = (r["category"] as? String) ?? "imported"
        if exchanges.count > 1 { warn(.multiTurn, "\(exchanges.count) exchanges") }
        let example = Example(id: id, task: task, imageID: imageName ?? "", image: image, instruction: exchanges[0].human,
                              answer: answer, references: refs, category: category, followUps: Array(exchanges.dropFirst()))
        if let tok = options.tokenizer {
            var unknown: [String] = []
            for x in exchanges { unknown += tok.unknownPieces(x.human) + tok.unknownPieces(x.gpt) }
            if !unknown.isEmpty {
                report.unknownWordCount += unknown.count
                for w in unknown { report.unknownWords[w, default: 0] += 1 }
                warn(.unknownWords, Array(Set(unknown)).sorted().joined(separator: " "))
            }
            let n = exchanges.map { tok.encode($0.human).count + tok.encode($0.gpt).count + 2 }.reduce(1, +)
            if n > options.layout.textLength {
                warn(.tooLong, "\(n) tokens, room for \(options.layout.textLength)")
            }
        }
        report.examples.append(example)
        report.imageFormats.append(format)
        report.sources.append(file)
    }
}
