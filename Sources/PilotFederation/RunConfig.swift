import Foundation
import PilotCore
import PilotModel

/// Every key a run configuration may set: its type, default, allowed range and meaning.
/// This table is the documentation (`pilot train --help-config` prints it) and the validator.
public struct ConfigKey: Sendable {
    public enum Kind: Sendable { case string([String]?), int(ClosedRange<Int>), double(ClosedRange<Double>), bool, strings([String]), ints(ClosedRange<Int>) }
    public let name: String
    public let kind: Kind
    public let defaultValue: ConfigFile.Value?
    public let help: String
    /// An optional key without a default: absent from the effective config when not given, so runs
    /// that do not use it keep their config hash (the `model.*` keys of a run on an imported LM).
    public var optional = false
}

public enum RunConfigSchema {
    static let big = Int.max / 4
    /// Every key, section by section (`RunSettings.sections`).
    public static let keys: [ConfigKey] = RunSettings.sections.flatMap { $0.keys }

    public static func key(_ name: String) -> ConfigKey? { keys.first { $0.name == name } }

    /// Keys that change how a machine holds the job, never its results (the shared LM's switch and
    /// cache directory, the vision-feature cache, activation recomputation): not part of a run's
    /// identity, so a resume may change them.
    public static let machineKeys: Set<String> = ["model.share_base", "model.weights_cache", "model.cache_vision_features",
                                                  "train.recompute_activations"]

    /// What `pilot train --list-keys` prints: each key with its default, "(optional)" for a key that
    /// may stay unset (its help says what unset means) or "(required)" for one a config must give,
    /// and its help on the next line.
    public static var listing: [String] {
        keys.map { k in
            "\(k.name) = \(k.defaultValue?.description ?? (k.optional ? "(optional)" : "(required)"))\n    \(k.help)"
        }
    }

    /// "did you mean" for an unknown key: the closest valid key by edit distance.
    public static func suggestion(for name: String) -> String? {
        let tail = String(name.split(separator: ".").last ?? "")
        let scored = keys.map { key -> (String, Int) in
            let keyTail = String(key.name.split(separator: ".").last ?? "")
            return (key.name, min(editDistance(key.name, name), editDistance(keyTail, tail)))
        }
        guard let best = scored.min(by: { $0.1 < $1.1 }), best.1 <= max(2, tail.count / 3) else { return nil }
        return best.0
    }
}

/// A validated run configuration: every key of the schema with a value (given or default). Read it
/// through `RunSettings`, its typed sections.
public struct RunConfig: Sendable, Equatable {
    public let values: [String: ConfigFile.Value]
    /// The `faults.*` keys (fault injection for tests): not part of the run's identity, so they are
    /// not in `values`, the effective file or the hash, and a resume may change or drop them.
    public var faults: [String: ConfigFile.Value] = [:]
    /// Keys that say how this machine runs the job, not what it computes (`RunConfigSchema.machineKeys`):
    /// like the faults, outside `values`, the effective file and the hash, so a resume may change them.
    public var machine: [String: ConfigFile.Value] = [:]
    /// The file as written (stored in checkpoints with its hash).
    public let sourceText: String
    public let sourcePath: String

    /// Parses and validates; every problem is collected and reported together, each with its line.
    public init(file: ConfigFile) throws {
        var problems: [String] = []
        var values: [String: ConfigFile.Value] = [:]
        for (name, entry) in file.entries {
            guard let key = RunConfigSchema.key(name) else {
                let hint = RunConfigSchema.suggestion(for: name).map { "; did you mean '\($0)'?" } ?? ""
                problems.append("\(file.path):\(entry.line): unknown key '\(name)'\(hint)")
                continue
            }
            if let problem = Self.check(key, entry.value) {
                problems.append("\(file.path):\(entry.line): \(name) \(problem)")
            } else {
                values[name] = Self.normalise(key, entry.value)
                if Self.pathKeys.contains(name), case let .string(p) = entry.value {
                    values[name] = .string(Self.resolve(p, relativeTo: file.path))
                }
            }
        }
        for key in RunConfigSchema.keys where values[key.name] == nil && !key.optional {
            if let d = key.defaultValue {
                values[key.name] = d
            } else if !problems.contains(where: { $0.contains(" \(key.name) ") }) {
                problems.append("\(file.path): required key '\(key.name)' is missing (\(key.help))")
            }
        }
        if !problems.isEmpty {
            throw PilotError.message("invalid config:\n  " + problems.joined(separator: "\n  "))
        }
        self.values = values.filter { !$0.key.hasPrefix("faults.") && !RunConfigSchema.machineKeys.contains($0.key) }
        faults = values.filter { $0.key.hasPrefix("faults.") }
        machine = values.filter { RunConfigSchema.machineKeys.contains($0.key) }
        sourceText = file.text
        sourcePath = file.path
    }

    /// Keys holding paths: stored resolved (absolute, relative to the config file's directory), so
    /// the copy in the run directory and a resumed run mean the same files.
    static let pathKeys: Set<String> = ["run.data", "run.base", "model.lm", "model.vision_tower", "model.weights_cache"]

    static func resolve(_ p: String, relativeTo configPath: String) -> String {
        if p.hasPrefix("/") { return URL(fileURLWithPath: p).standardizedFileURL.path }
        let dir = URL(fileURLWithPath: configPath).deletingLastPathComponent()
        return dir.appendingPathComponent(p).standardizedFileURL.path
    }

    static func check(_ key: ConfigKey, _ v: ConfigFile.Value) -> String? {
        switch (key.kind, v) {
        case let (.string(choices), .string(s)):
            if let choices, !choices.contains(s) { return "is \"\(s)\"; choose one of \(choices.map { "\"\($0)\"" }.joined(separator: ", "))" }
            if s.isEmpty { return "must not be empty" }
            return nil
        case let (.int(range), .int(i)):
            return range.contains(i) ? nil : "is \(i); it must be in \(range.lowerBound)...\(range.upperBound == RunConfigSchema.big ? "∞" : "\(range.upperBound)")"
        case let (.double(range), .double(d)):
            return range.contains(d) ? nil : "is \(d); it must be in \(range.lowerBound)...\(range.upperBound)"
        case let (.double(range), .int(i)):
            return range.contains(Double(i)) ? nil : "is \(i); it must be in \(range.lowerBound)...\(range.upperBound)"
        case (.bool, .bool):
            return nil
        case let (.strings(choices), .array(items)):
            var seen: Set<String> = []
            for item in items {
                guard case let .string(x) = item else { return "has a \(item.typeName) \(item) in its list; expected strings in double quotes" }
                guard choices.contains(x) else { return "has \"\(x)\"; choose from \(choices.map { "\"\($0)\"" }.joined(separator: ", "))" }
                guard seen.insert(x).inserted else { return "lists \"\(x)\" twice" }
            }
            return items.isEmpty ? "is empty; leave the key out for the default" : nil
        case let (.ints(range), .array(items)):
            for (i, item) in items.enumerated() {
                guard case let .int(x) = item else { return "has a \(item.typeName) \(item) in its list; expected integers" }
                guard range.contains(x) else { return "has \(x) at position \(i); each must be in \(range.lowerBound)...\(range.upperBound)" }
            }
            return items.isEmpty ? "is empty; leave the key out for the default" : nil
        default:
            return "has the wrong type: \(v.typeName) \(v), expected \(Self.typeName(key.kind))"
        }
    }

    static func typeName(_ k: ConfigKey.Kind) -> String {
        switch k {
        case .string(let c): return c.map { "one of " + $0.map { "\"\($0)\"" }.joined(separator: ", ") } ?? "a string in double quotes"
        case .int: return "an integer"
        case .double: return "a number"
        case .bool: return "true or false"
        case .strings(let c): return "a list of strings from " + c.map { "\"\($0)\"" }.joined(separator: ", ")
        case .ints(let r): return "a list of integers in \(r.lowerBound)...\(r.upperBound)"
        }
    }

    static func normalise(_ key: ConfigKey, _ v: ConfigFile.Value) -> ConfigFile.Value {
        if case .double = key.kind, case let .int(i) = v { return .double(Double(i)) }
        return v
    }

    /// The effective configuration as a config file (sections, every key), which reads back to
    /// the same values: what the run directory keeps as config.toml.
    public var effectiveFile: String {
        var out = "# Effective configuration of this run (every key, paths resolved); written by pilot train.\n"
        var section = ""
        for key in values.keys.sorted() {
            let parts = key.split(separator: ".", maxSplits: 1).map(String.init)
            if parts[0] != section { section = parts[0]; out += "\n[\(section)]\n" }
            out += "\(parts[1]) = \(Self.render(values[key]!))\n"
        }
        return out
    }

    static func render(_ v: ConfigFile.Value) -> String {
        switch v {
        case .string(let s): return "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
        case .double(let d): return d == d.rounded() && abs(d) < 1e15 ? String(format: "%.1f", d) : "\(d)"
        case .array(let a): return "[" + a.map(render).joined(separator: ", ") + "]"
        default: return v.description
        }
    }

    /// SHA-256 of the effective configuration (what resume compares).
    public var hash: String { SHA256.hex(Array(effectiveFile.utf8)) }

    /// Keys whose effective values differ from another configuration's.
    public func differences(from other: RunConfig) -> [String] {
        Set(values.keys).union(other.values.keys).sorted().filter { values[$0] != other.values[$0] }
            .map { "\($0): \(other.values[$0]?.description ?? "unset") → \(values[$0]?.description ?? "unset")" }
    }

    /// Parses the effective configuration stored in a checkpoint back (all keys present).
    public init(effectiveFile text: String, path: String) throws {
        try self.init(file: ConfigFile(text: text, path: path))
    }
}
