import Foundation
import PilotCore

/// Reading and writing Hugging Face tokenizer.json (the `tokenizers` serialization), limited to what byte-level
/// BPE models use; anything else is refused by name with the list of what is supported.
extension BPETokenizer {
    /// Loads `path` (a tokenizer.json). A tokenizer_config.json beside it, when present, gives BOS/EOS/PAD/UNK
    /// and `add_bos_token`.
    public init(tokenizerJSON path: String) throws {
        guard let data = try readSmallFile(path, limit: tokenizerFileLimit, what: "a tokenizer.json") else { throw PilotError.notFound(file: path, object: "") }
        let configPath = (path as NSString).deletingLastPathComponent + "/tokenizer_config.json"
        try self.init(tokenizerJSON: data, config: try readSmallFile(configPath, limit: smallFileLimit, what: "a tokenizer_config.json"), source: path)
    }

    /// Parses tokenizer.json bytes (and optionally tokenizer_config.json bytes); `source` names them in errors.
    public init(tokenizerJSON data: Data, config: Data? = nil, source: String = "tokenizer.json") throws {
        func fail(_ what: String) -> PilotError { .invalidArgument("\(source): \(what)") }
        guard let root = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw fail("not a JSON object; expected a Hugging Face tokenizer.json")
        }
        guard let model = root["model"] as? [String: Any] else { throw fail("no 'model' object") }
        let type = model["type"] as? String ?? (model["merges"] != nil ? "BPE" : "unknown")
        guard type == "BPE" else { throw fail("model type '\(type)' is not supported; supported: BPE (byte-level)") }
        if model["byte_fallback"] as? Bool == true {
            throw fail("BPE with byte_fallback (SentencePiece-style, e.g. Llama 2) is not supported; supported: byte-level BPE")
        }
        for key in ["continuing_subword_prefix", "end_of_word_suffix"] {
            if let v = model[key] as? String, !v.isEmpty { throw fail("BPE '\(key)' = '\(v)' is not supported (byte-level BPE has none)") }
        }
        if let d = model["dropout"] as? Double, d > 0 { throw fail("BPE dropout \(d) is not supported at inference; set it to null") }
        guard let vocab = model["vocab"] as? [String: Any] else { throw fail("model has no 'vocab' object") }
        var maxID = -1
        var pairs: [(String, Int)] = []
        pairs.reserveCapacity(vocab.count)
        for (t, v) in vocab {
            guard let n = v as? Int, n >= 0, n < 1 << 24 else { throw fail("vocab entry '\(t)' has id \(v), not an id in 0..<2^24") }
            pairs.append((t, n)); maxID = max(maxID, n)
        }
        var tokens = [String](repeating: "", count: maxID + 1)
        for (t, n) in pairs { tokens[n] = t }
        var merges: [(String, String)] = []
        let rawMerges = model["merges"] as? [Any] ?? []
        merges.reserveCapacity(rawMerges.count)
        for (i, m) in rawMerges.enumerated() {
            if let s = m as? String {
                let parts = s.split(separator: " ", omittingEmptySubsequences: false)
                guard parts.count == 2 else { throw fail("merge \(i) '\(s)' is not two tokens separated by one space") }
                merges.append((String(parts[0]), String(parts[1])))
            } else if let p = m as? [String], p.count == 2 {
                merges.append((p[0], p[1]))
            } else {
                throw fail("merge \(i) is neither \"a b\" nor [\"a\", \"b\"]")
            }
        }
        var added: [AddedToken] = []
        for (i, a) in (root["added_tokens"] as? [[String: Any]] ?? []).enumerated() {
            guard let id = a["id"] as? Int, let content = a["content"] as? String, id >= 0, id < 1 << 24 else {
                throw fail("added_tokens[\(i)] has no valid 'id' and 'content'")
            }
            added.append(AddedToken(id: Int32(id), content: content, special: a["special"] as? Bool ?? false,
                                    lstrip: a["lstrip"] as? Bool ?? false, rstrip: a["rstrip"] as? Bool ?? false,
                                    singleWord: a["single_word"] as? Bool ?? false, normalized: a["normalized"] as? Bool ?? false))
        }
        let nfc = try Self.parseNormalizer(root["normalizer"], fail)
        var steps: [PreTokenizer] = []
        try Self.parsePreTokenizer(root["pre_tokenizer"], into: &steps, fail)
        if let d = root["decoder"] as? [String: Any], d["type"] as? String == "ByteLevel" {
        } else {
            let name = (root["decoder"] as? [String: Any])?["type"] as? String ?? "null"
            throw fail("decoder '\(name)' is not supported; supported: ByteLevel")
        }
        var bos: Int32?
        let addsBOS = try Self.parsePostProcessor(root["post_processor"], bos: &bos, fail)

        let lookup: (String) -> Int32? = { s in
            if let a = added.first(where: { $0.content == s }) { return a.id }
            return (vocab[s] as? Int).map(Int32.init)
        }
        let bpeUnknown = (model["unk_token"] as? String).flatMap(lookup)
        var eos: Int32?, pad: Int32?, unk = bpeUnknown
        var configBOS = false
        if let config, let c = (try? JSONSerialization.jsonObject(with: config)) as? [String: Any] {
            func tokenName(_ key: String) -> String? {
                if let s = c[key] as? String { return s }
                return (c[key] as? [String: Any])?["content"] as? String
            }
            bos = bos ?? tokenName("bos_token").flatMap(lookup)
            eos = tokenName("eos_token").flatMap(lookup)
            pad = tokenName("pad_token").flatMap(lookup)
            unk = unk ?? tokenName("unk_token").flatMap(lookup)
            configBOS = c["add_bos_token"] as? Bool ?? false
        }
        try self.init(tokens: tokens, merges: merges, addedTokens: added, preTokenizers: steps,
                      ignoreMerges: model["ignore_merges"] as? Bool ?? false, normalizesNFC: nfc,
                      addsBOS: addsBOS || configBOS, bosID: bos, eosID: eos, padID: pad, unkID: unk, bpeUnknownID: bpeUnknown,
                      fuseUnknown: model["fuse_unk"] as? Bool ?? false, source: source)
    }

    private static func parseNormalizer(_ value: Any?, _ fail: (String) -> PilotError) throws -> Bool {
        guard let n = value as? [String: Any] else { return false }
        let type = n["type"] as? String ?? "?"
        if type == "NFC" { return true }
        if type == "Sequence", let list = n["normalizers"] as? [Any] {
            var nfc = false
            for item in list { nfc = try parseNormalizer(item, fail) || nfc }
            return nfc
        }
        throw fail("normalizer '\(type)' is not supported; supported: none (null) or NFC")
    }

    private static func parsePreTokenizer(_ value: Any?, into steps: inout [PreTokenizer], _ fail: (String) -> PilotError) throws {
        guard let p = value as? [String: Any] else { throw fail("pre_tokenizer is null; byte-level BPE needs ByteLevel") }
        let type = p["type"] as? String ?? "?"
        switch type {
        case "Sequence":
            for item in p["pretokenizers"] as? [Any] ?? [] { try parsePreTokenizer(item, into: &steps, fail) }
        case "ByteLevel":
            steps.append(.byteLevel(addPrefixSpace: p["add_prefix_space"] as? Bool ?? true, useRegex: p["use_regex"] as? Bool ?? true))
        case "Digits":
            steps.append(.digits(individual: p["individual_digits"] as? Bool ?? false))
        case "Split":
            let pattern = p["pattern"] as? [String: Any]
            guard let regex = pattern?["Regex"] as? String else {
                throw fail("Split pre-tokenizer with pattern \(pattern ?? [:]) is not supported; supported: the Regex patterns of GPT-2, Llama 3 and Qwen2")
            }
            guard let known = SplitPattern(rawValue: regex) else {
                throw fail("Split pre-tokenizer pattern \(regex) is not one we have a matcher for; supported: \(SplitPattern.allCases.map(\.rawValue))")
            }
            let behavior = p["behavior"] as? String ?? "Isolated"
            guard behavior == "Isolated", p["invert"] as? Bool != true else {
                throw fail("Split behavior '\(behavior)' (invert \(p["invert"] ?? false)) is not supported; supported: Isolated, not inverted")
            }
            steps.append(.split(known))
        default:
            throw fail("pre_tokenizer '\(type)' is not supported; supported: ByteLevel, Digits, Split (GPT-2/Llama 3/Qwen2 regex), Sequence")
        }
    }

    /// Whether the post-processor adds BOS (its id into `bos`); ByteLevel adds nothing.
    private static func parsePostProcessor(_ value: Any?, bos: inout Int32?, _ fail: (String) -> PilotError) throws -> Bool {
        guard let p = value as? [String: Any] else { return false }
        let type = p["type"] as? String ?? "?"
        switch type {
        case "ByteLevel": return false
        case "Sequence":
            var adds = false
            for item in p["processors"] as? [Any] ?? [] { adds = try parsePostProcessor(item, bos: &bos, fail) || adds }
            return adds
        case "TemplateProcessing":
            guard let first = (p["single"] as? [[String: Any]])?.first, let special = first["SpecialToken"] as? [String: Any],
                  let name = special["id"] as? String else { return false }
            let ids = ((p["special_tokens"] as? [String: Any])?[name] as? [String: Any])?["ids"] as? [Int]
            if let id = ids?.first {
                guard let b = Int32(exactly: id) else { throw fail("post_processor's BOS id \(id) is not a token id") }
                bos = b
            }
            return true
        default:
            throw fail("post_processor '\(type)' is not supported; supported: ByteLevel, TemplateProcessing, Sequence")
        }
    }

    // MARK: Writing

    /// A tokenizer.json that Hugging Face `tokenizers` loads and that encodes as this tokenizer does
    /// (for a GGUF with pre-tokenizer `smollm`, the structure /work/shared/refs/gguf_to_hf.py writes).
    public func tokenizerJSON() throws -> Data {
        let addedIDs = Set(addedTokens.map(\.id))
        var vocab: [String: Int] = [:]
        for (i, t) in tokens.enumerated() where !t.isEmpty && vocab[t] == nil && !addedIDs.contains(Int32(i)) { vocab[t] = i }
        for a in addedTokens where vocab[a.content] == nil { vocab[a.content] = Int(a.id) }
        func step(_ s: PreTokenizer) -> [String: Any] {
            switch s {
            case let .digits(individual): return ["type": "Digits", "individual_digits": individual]
            case let .split(pattern):
                return ["type": "Split", "pattern": ["Regex": pattern.rawValue], "behavior": "Isolated", "invert": false]
            case let .byteLevel(prefix, regex):
                return ["type": "ByteLevel", "add_prefix_space": prefix, "trim_offsets": true, "use_regex": regex]
            }
        }
        let pre: Any = preTokenizers.count == 1 ? step(preTokenizers[0])
            : ["type": "Sequence", "pretokenizers": preTokenizers.map(step)] as [String: Any]
        var post: Any = NSNull()
        if addsBOS, let bosID {
            let name = piece(bosID)
            post = ["type": "TemplateProcessing",
                    "single": [["SpecialToken": ["id": name, "type_id": 0]], ["Sequence": ["id": "A", "type_id": 0]]],
                    "pair": [["SpecialToken": ["id": name, "type_id": 0]], ["Sequence": ["id": "A", "type_id": 0]],
                             ["SpecialToken": ["id": name, "type_id": 1]], ["Sequence": ["id": "B", "type_id": 1]]],
                    "special_tokens": [name: ["id": name, "ids": [Int(bosID)], "tokens": [name]]]] as [String: Any]
        }
        let modelUnknown: Any = bpeUnknownID.map { piece($0) as Any } ?? NSNull()
        let root: [String: Any] = [
            "version": "1.0", "truncation": NSNull(), "padding": NSNull(),
            "added_tokens": addedTokens.map { a in
                ["id": Int(a.id), "content": a.content, "single_word": a.singleWord, "lstrip": a.lstrip, "rstrip": a.rstrip,
                 "normalized": a.normalized, "special": a.special] as [String: Any]
            },
            "normalizer": normalizesNFC ? ["type": "NFC"] as Any : NSNull(),
            "pre_tokenizer": pre,
            "post_processor": post,
            "decoder": ["type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true],
            "model": ["type": "BPE", "dropout": NSNull(), "unk_token": modelUnknown,
                      "continuing_subword_prefix": NSNull(), "end_of_word_suffix": NSNull(), "fuse_unk": fuseUnknown,
                      "byte_fallback": false, "ignore_merges": ignoreMerges, "vocab": vocab,
                      "merges": merges.map { [$0.0, $0.1] }] as [String: Any],
        ]
        return try JSONSerialization.data(withJSONObject: root, options: [.sortedKeys])
    }
}
