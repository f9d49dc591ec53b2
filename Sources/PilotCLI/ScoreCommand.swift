import ArgumentParser
import Foundation
import PilotCore
import PilotData

struct ScoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "score",
        abstract: "Score a predictions file against references with a task's metric.",
        discussion: """
        REFS is {"id": ["ref", ...]} (a single string is taken as one reference) and PREDS is \
        {"id": "prediction"}. Every reference id is scored; a missing prediction counts as a miss \
        (and is reported). Metrics: caption CIDEr-D (pycocoevalcap), vqa/ocr exact match after VQA \
        normalisation, grounding Acc@IoU>=0.5, science choice-letter accuracy (exact match for references that are not a letter). Prints JSON with the \
        corpus score and the per-item scores.
        """
    )

    @Option(help: "Task whose metric to use: caption, vqa, grounding, ocr or science.")
    var task: String

    @Option(help: "References JSON file.")
    var refs: String

    @Option(help: "Predictions JSON file.")
    var preds: String

    func validate() throws {
        guard FedTask(rawValue: task) != nil else {
            throw ValidationError("--task must be one of \(FedTask.allCases.map(\.rawValue).joined(separator: ", ")), not '\(task)'")
        }
    }

    static func loadObject(_ path: String) throws -> [String: Any] {
        guard let data = FileManager.default.contents(atPath: path) else { throw PilotError.notFound(file: path, object: "") }
        guard let obj = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw PilotError.message("'\(path)' is not a JSON object keyed by example id")
        }
        return obj
    }

    func run() throws {
        let t = try FedTask.parse(task)
        let refObj = try Self.loadObject(refs), predObj = try Self.loadObject(preds)
        let ids = refObj.keys.sorted()
        guard !ids.isEmpty else { throw PilotError.message("'\(refs)' has no references") }
        var references: [[String]] = []
        for id in ids {
            if let list = refObj[id] as? [String], !list.isEmpty { references.append(list) }
            else if let one = refObj[id] as? String { references.append([one]) }
            else { throw PilotError.message("'\(refs)' id '\(id)': expected a non-empty list of reference strings") }
        }
        var missing: [String] = []
        var predictions: [String] = []
        for id in ids {
            if let p = predObj[id] as? String { predictions.append(p) }
            else if predObj[id] != nil { throw PilotError.message("'\(preds)' id '\(id)': the prediction must be a string") }
            else { missing.append(id); predictions.append("") }
        }
        let extra = predObj.keys.filter { refObj[$0] == nil }.sorted()
        if !missing.isEmpty { Console.error("warning: \(missing.count) ids have no prediction and score 0: \(missing.prefix(10).joined(separator: ", "))") }
        if !extra.isEmpty { Console.error("warning: \(extra.count) predictions have no reference and are ignored: \(extra.prefix(10).joined(separator: ", "))") }
        let r = try Metrics.score(task: t, predictions: predictions, references: references)
        var lines = ["{", "  \"task\": \"\(t.rawValue)\",", "  \"metric\": \"\(r.kind.rawValue)\",", "  \"score\": \(r.score),",
                     "  \"n\": \(ids.count),", "  \"missing_predictions\": \(missing.count),", "  \"per_item\": {"]
        for (i, id) in ids.enumerated() {
            let key = String(data: try JSONSerialization.data(withJSONObject: [id], options: [.fragmentsAllowed]), encoding: .utf8)!.dropFirst().dropLast()
            lines.append("    \(key): \(r.perItem[i])\(i == ids.count - 1 ? "" : ",")")
        }
        lines += ["  }", "}"]
        Console.out(lines.joined(separator: "\n"))
    }
}
