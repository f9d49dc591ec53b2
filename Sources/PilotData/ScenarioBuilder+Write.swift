import Foundation
import PilotCore

/// Writing a built scenario to its directory, and what `pilot data scenario` prints about it.
extension ScenarioBuilder {
    /// Writes the scenario directory atomically: everything goes to a temporary sibling folder, which
    /// is renamed to `dir` at the end (an existing `dir` is replaced only with `replace`).
    public static func write(_ s: BuiltScenario, to dir: String, replace: Bool = false) throws {
        let fm = FileManager.default
        let target = URL(fileURLWithPath: dir).standardizedFileURL.path
        var isDir: ObjCBool = false
        let exists = fm.fileExists(atPath: target, isDirectory: &isDir)
        if exists && !replace {
            throw PilotError.message("'\(dir)' already exists; choose another --out, or pass --force to replace it")
        }
        if exists && !isDir.boolValue { throw PilotError.message("'\(dir)' exists and is not a folder") }
        let parent = (target as NSString).deletingLastPathComponent
        do { try fm.createDirectory(atPath: parent, withIntermediateDirectories: true) }
        catch { throw PilotError.message("cannot create '\(parent)': \(error.localizedDescription)") }
        let tmp = target + ".tmp-\(ProcessInfo.processInfo.processIdentifier)"
        try? fm.removeItem(atPath: tmp)
        do {
            for sub in ["", "/clients", "/test"] { try fm.createDirectory(atPath: tmp + sub, withIntermediateDirectories: true) }
            try s.tokenizer.save(path: tmp + "/tokenizer.h5")
            try s.pretrain.write(to: tmp + "/pretrain.h5")
            for (k, c) in s.clients.enumerated() { try c.write(to: tmp + "/" + ScenarioGenerator.clientFile(k)) }
            for t in s.tasks { try s.tests[t]!.write(to: tmp + "/test/\(t.rawValue).h5") }
            try Data(manifest(s).utf8).write(to: URL(fileURLWithPath: tmp + "/scenario.json"))
            try Data((report(s) + "\n").utf8).write(to: URL(fileURLWithPath: tmp + "/import-report.txt"))
        } catch {
            try? fm.removeItem(atPath: tmp)
            throw error
        }
        if exists {
            let old = target + ".old-\(ProcessInfo.processInfo.processIdentifier)"
            do {
                try fm.moveItem(atPath: target, toPath: old)
                try fm.moveItem(atPath: tmp, toPath: target)
            } catch { throw PilotError.message("cannot replace '\(dir)': \(error.localizedDescription); the new scenario is in \(tmp)") }
            try? fm.removeItem(atPath: old)
        } else {
            do { try fm.moveItem(atPath: tmp, toPath: target) }
            catch { throw PilotError.message("cannot rename '\(tmp)' to '\(dir)': \(error.localizedDescription)") }
        }
    }

    /// Every file's import report, the vocabulary note and the summary table.
    public static func report(_ s: BuiltScenario) -> String {
        var lines: [String] = []
        for r in s.reports { lines.append("== \(r.file) (task \(r.task))"); lines.append(r.report.text) }
        lines.append("== vocabulary")
        lines.append(vocabularyNote(s))
        if !s.tooLong.isEmpty {
            lines.append("longer than the \(s.spec.importOptions.layout.textLength)-token layout (cut at training: later exchanges, then instruction tokens): "
                         + s.tooLong.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
        }
        if s.pretrainImageOverlap > 0 {
            lines.append("warning: \(s.pretrainImageOverlap) image(s) of the given pretraining split are also used by client or test records")
        }
        lines.append("== summary")
        lines.append(s.summary)
        return lines.joined(separator: "\n")
    }

    public static func vocabularyNote(_ s: BuiltScenario) -> String {
        let occurrences = s.droppedWords.values.reduce(0, +)
        if s.droppedWords.isEmpty { return "tokenizer: \(s.tokenizer.count) tokens; every word of the data is in it (nothing maps to <unk>)" }
        let top = s.droppedWords.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.prefix(10)
        return "tokenizer: \(s.tokenizer.count) tokens (the limit); \(s.droppedWords.count) rarer words beyond it map to <unk> (\(occurrences) occurrences), most frequent: "
            + top.map { "\($0.key) (\($0.value))" }.joined(separator: ", ") + "; raise --max-vocab (and the model's vocab_size) to keep them"
    }

    /// The manifest, with the generator's keys (so `pilot train` and `pilot pretrain` read it) and a fixed key order.
    static func manifest(_ s: BuiltScenario) -> String {
        let sp = s.spec
        var lines: [String] = ["{"]
        lines.append("  \"format\": \"pilot-fedmit-scenario\",")
        lines.append("  \"format_version\": 1,")
        lines.append("  \"generator\": \(jsonString(version)),")
        lines.append("  \"scenario\": \(jsonString(sp.name)),")
        lines.append("  \"tasks\": [\(s.tasks.map { jsonString($0.rawValue) }.joined(separator: ", "))],")
        lines.append("  \"seed\": \(sp.seed),")
        lines.append("  \"size\": \"custom\",")
        lines.append("  \"image_size\": \(sp.importOptions.imageSize),")
        lines.append("  \"image_mode\": \(jsonString(sp.importOptions.imageMode.rawValue)),")
        lines.append("  \"eval_turn\": \(jsonString(sp.evalTurn.rawValue)),")
        if sp.clientsFile != nil { lines.append("  \"split\": \"by-owner\",") } else {
            switch sp.split {
            case .random: lines.append("  \"split\": \"random\",")
            case .dirichlet(let a): lines.append("  \"split\": \"dirichlet\",\n  \"dirichlet_alpha\": \(a),")
            }
        }
        lines.append("  \"sources\": [\(s.reports.map { "{\"task\": \(jsonString($0.task)), \"file\": \(jsonString($0.file)), \"records\": \($0.report.total), \"kept\": \($0.report.valid)}" }.joined(separator: ", "))],")
        lines.append("  \"tokenizer\": {\"file\": \"tokenizer.h5\", \"kind\": \"word-level\", \"size\": \(s.tokenizer.count), \"words_beyond_limit\": \(s.droppedWords.count)},")
        lines.append("  \"pretrain\": {\"file\": \"pretrain.h5\", \"count\": \(s.pretrain.examples.count), \"source\": \(jsonString(s.pretrainSource))},")
        lines.append("  \"clients\": [")
        for (k, sh) in s.clients.enumerated() {
            let comma = k == s.clients.count - 1 ? "" : ","
            lines.append("    {\"client\": \(k), \"name\": \(jsonString(s.clientNames[k])), \"task\": \(jsonString(sh.metadata.task)), \"file\": \(jsonString(ScenarioGenerator.clientFile(k))), \"count\": \(sh.examples.count)}\(comma)")
        }
        lines.append("  ],")
        lines.append("  \"test\": [")
        for (i, t) in s.tasks.enumerated() {
            let comma = i == s.tasks.count - 1 ? "" : ","
            lines.append("    {\"task\": \(jsonString(t.rawValue)), \"metric\": \(jsonString(t.metric.rawValue)), \"file\": \"test/\(t.rawValue).h5\", \"count\": \(s.tests[t]!.examples.count)}\(comma)")
        }
        lines.append("  ]")
        lines.append("}")
        return lines.joined(separator: "\n") + "\n"
    }
}
