import Foundation
import PilotCore

/// The run configuration format: a small subset of TOML.
///
///     # comment
///     [section]
///     key = "string" | 123 | 1.5e-4 | true | [1, 2, 3]
///
/// Keys are `section.key`. Parsing keeps the line of every key, so that validation errors can
/// point at it. Anything outside this subset is an error naming the file and line.
public struct ConfigFile: Sendable {
    public enum Value: Sendable, Equatable, CustomStringConvertible {
        case string(String), int(Int), double(Double), bool(Bool), array([Value])
        public var description: String {
            switch self {
            case .string(let s): return "\"\(s)\""
            case .int(let i): return "\(i)"
            case .double(let d): return "\(d)"
            case .bool(let b): return "\(b)"
            case .array(let a): return "[" + a.map(\.description).joined(separator: ", ") + "]"
            }
        }
        var typeName: String {
            switch self {
            case .string: return "string"
            case .int: return "integer"
            case .double: return "float"
            case .bool: return "boolean"
            case .array: return "array"
            }
        }
    }

    public struct Entry: Sendable, Equatable {
        public let value: Value
        public let line: Int
    }

    public let path: String
    public let text: String
    /// "section.key" → value and line, in file order.
    public private(set) var entries: [(key: String, entry: Entry)] = []

    public init(path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw PilotError.message("config file '\(path)' cannot be read: check the path and permissions")
        }
        try self.init(text: String(decoding: data, as: UTF8.self), path: path)
    }

    public init(text: String, path: String = "<config>") throws {
        self.path = path
        self.text = text
        var section = ""
        var seen: Set<String> = []
        var sections: [String: Int] = [:]   // section → line of its header
        for (i, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let lineNo = i + 1
            let line = Self.stripComment(String(rawLine)).trimmingCharacters(in: .whitespaces)
            if line.isEmpty { continue }
            if line.hasPrefix("[") {
                guard line.hasSuffix("]"), line.count > 2 else { throw error(lineNo, "a section header looks like [name]") }
                section = String(line.dropFirst().dropLast()).trimmingCharacters(in: .whitespaces)
                guard section.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) else {
                    throw error(lineNo, "section name '\(section)' may only contain letters, digits and _")
                }
                // TOML defines a table once; a second header would silently merge two halves of a section.
                if let first = sections[section] {
                    throw error(lineNo, "[\(section)] is opened a second time (first at line \(first)): move these keys under the first [\(section)] and delete this header")
                }
                sections[section] = lineNo
                continue
            }
            guard let eq = line.firstIndex(of: "=") else { throw error(lineNo, "expected `key = value`") }
            let key = line[..<eq].trimmingCharacters(in: .whitespaces)
            guard !key.isEmpty, key.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) else {
                throw error(lineNo, "key '\(key)' may only contain letters, digits and _")
            }
            let full = section.isEmpty ? key : "\(section).\(key)"
            guard !seen.contains(full) else { throw error(lineNo, "'\(full)' is set twice") }
            seen.insert(full)
            var rest = Substring(line[line.index(after: eq)...].trimmingCharacters(in: .whitespaces))
            let value = try parseValue(&rest, lineNo)
            guard rest.trimmingCharacters(in: .whitespaces).isEmpty else { throw error(lineNo, "unexpected text after the value: '\(rest)'") }
            entries.append((full, Entry(value: value, line: lineNo)))
        }
    }

    public subscript(key: String) -> Entry? { entries.first { $0.key == key }?.entry }

    static func stripComment(_ line: String) -> String {
        var inString = false
        var escaped = false
        for (i, c) in line.enumerated() {
            if escaped { escaped = false; continue }
            if c == "\\" && inString { escaped = true; continue }
            if c == "\"" { inString.toggle() }
            if c == "#" && !inString { return String(line.prefix(i)) }
        }
        return line
    }

    func error(_ line: Int, _ message: String) -> PilotError {
        .message("\(path):\(line): \(message)")
    }

    func parseValue(_ s: inout Substring, _ line: Int) throws -> Value {
        s = s.drop { $0 == " " || $0 == "\t" }
        guard let c = s.first else { throw error(line, "missing value") }
        if c == "\"" {
            s = s.dropFirst()
            var out = ""
            while let ch = s.first {
                s = s.dropFirst()
                if ch == "\"" { return .string(out) }
                if ch == "\\" {
                    guard let e = s.first else { break }
                    s = s.dropFirst()
                    switch e {
                    case "n": out.append("\n")
                    case "t": out.append("\t")
                    case "\"": out.append("\"")
                    case "\\": out.append("\\")
                    default: throw error(line, "unknown escape \\\(e) in string")
                    }
                } else {
                    out.append(ch)
                }
            }
            throw error(line, "unterminated string")
        }
        if c == "[" {
            s = s.dropFirst()
            var items: [Value] = []
            while true {
                s = s.drop { $0 == " " || $0 == "\t" }
                if s.first == "]" { s = s.dropFirst(); return .array(items) }
                items.append(try parseValue(&s, line))
                s = s.drop { $0 == " " || $0 == "\t" }
                if s.first == "," { s = s.dropFirst(); continue }
                if s.first == "]" { s = s.dropFirst(); return .array(items) }
                throw error(line, "expected , or ] in array")
            }
        }
        let token = s.prefix { !($0 == "," || $0 == "]" || $0 == " " || $0 == "\t") }
        s = s.dropFirst(token.count)
        let t = String(token).replacingOccurrences(of: "_", with: "")
        if token == "true" { return .bool(true) }
        if token == "false" { return .bool(false) }
        if let i = Int(t) { return .int(i) }
        if let d = Double(t), d.isFinite { return .double(d) }
        throw error(line, "cannot read value '\(token)': strings need double quotes, e.g. \"\(token)\"")
    }
}

/// Levenshtein distance, for "did you mean …" suggestions.
func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a), b = Array(b)
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var prev = Array(0...b.count)
    for i in 1...a.count {
        var cur = [i] + [Int](repeating: 0, count: b.count)
        for j in 1...b.count {
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
        }
        prev = cur
    }
    return prev[b.count]
}
