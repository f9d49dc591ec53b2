import PilotCore
import PilotHDF5

/// A word-level tokenizer for the FedMIT benchmark.
///
/// Pre-tokenisation (`Tokenizer.pieces`): text is lowercased; a run of letters is one word;
/// a number is one token (`12`, `0.12`: digits, optionally a dot and more digits); every
/// other non-space character is a token of its own; `<image>` is the image placeholder.
/// So the box `[0.12,0.40,0.31,0.62]` is the 9 tokens `[ 0.12 , 0.40 , 0.31 , 0.62 ]`.
///
/// The vocabulary is, in this order and so always in the same ids:
/// 1. the special tokens `<pad> <unk> <bos> <eos> <sep> <image>` (ids 0–5),
/// 2. a closed set that every split may need even if the pretraining split lacks it:
///    punctuation, the integers 0–100 and every box coordinate `0.00`…`1.00`,
/// 3. the generator's lexicon (`TaskGenerator.lexicon`), when building for generated data,
/// 4. the remaining pieces of the pretraining split, most frequent first, ties in
///    byte order of the text, up to `maxSize` entries in all.
/// Nothing depends on dictionary order, so the same split gives the same ids.
public struct Tokenizer: Equatable, Sendable {
    public static let pad = "<pad>", unk = "<unk>", bos = "<bos>", eos = "<eos>", sep = "<sep>", image = "<image>"
    public static let specials = [pad, unk, bos, eos, sep, image]
    public static let punctuation = [".", ",", "?", "!", ":", ";", "[", "]", "(", ")", "'", "\"", "-", "/", "%", "+", "=", "&"]
    public static let formatVersion: Int64 = 1

    public let tokens: [String]
    private let index: [String: Int32]

    public var padID: Int32 { 0 }
    public var unkID: Int32 { 1 }
    public var bosID: Int32 { 2 }
    public var eosID: Int32 { 3 }
    public var sepID: Int32 { 4 }
    public var imageID: Int32 { 5 }
    public var count: Int { tokens.count }

    public init(tokens: [String]) throws {
        guard tokens.count >= Self.specials.count, Array(tokens.prefix(Self.specials.count)) == Self.specials else {
            throw PilotError.invalidArgument("tokenizer: the first \(Self.specials.count) tokens must be \(Self.specials.joined(separator: " "))")
        }
        var idx: [String: Int32] = [:]
        for (i, t) in tokens.enumerated() {
            if idx[t] != nil { throw PilotError.invalidArgument("tokenizer: token '\(t)' appears twice (ids \(idx[t]!) and \(i))") }
            idx[t] = Int32(i)
        }
        self.tokens = tokens
        index = idx
    }

    public static func == (a: Tokenizer, b: Tokenizer) -> Bool { a.tokens == b.tokens }

    /// The closed set of step 2 above.
    public static var closedSet: [String] {
        var out = punctuation
        out += (0...100).map { String($0) }
        out += (0...100).map { c in "\(c / 100).\(c % 100 < 10 ? "0" : "")\(c % 100)" }
        return out
    }

    /// The closed set without the box coordinates `0.00`…`1.00` (data with no grounding task: more room for words).
    public static var closedSetWithoutCoordinates: [String] { punctuation + (0...100).map { String($0) } }

    /// Builds the vocabulary from texts (the pretraining split's instructions, answers and references).
    /// `closedSet` is step 2 above (`Tokenizer.closedSet` unless told otherwise).
    public static func build<S: Sequence>(from texts: S, required: [String] = [], maxSize: Int = 512,
                                          closedSet fixed: [String]? = nil) throws -> Tokenizer where S.Element == String {
        var seen = Set<String>()
        var vocab: [String] = []
        for t in specials + (fixed ?? closedSet) + required where !seen.contains(t) { seen.insert(t); vocab.append(t) }
        guard vocab.count <= maxSize else {
            throw PilotError.invalidArgument("tokenizer: max size \(maxSize) is smaller than the \(vocab.count) fixed tokens")
        }
        var counts: [String: Int] = [:]
        for text in texts { for p in pieces(text) where !seen.contains(p) { counts[p, default: 0] += 1 } }
        let ranked = counts.sorted { $0.value != $1.value ? $0.value > $1.value : Array($0.key.utf8).lexicographicallyPrecedes(Array($1.key.utf8)) }
        for (w, _) in ranked where vocab.count < maxSize { vocab.append(w) }
        return try Tokenizer(tokens: vocab)
    }

    /// Splits text into the pieces that are looked up in the vocabulary.
    public static func pieces(_ text: String) -> [String] {
        var out: [String] = []
        let chars = Array(text.lowercased())
        var i = 0
        while i < chars.count {
            let c = chars[i]
            if c.isWhitespace { i += 1; continue }
            if c == "<", i + 6 < chars.count + 0, String(chars[i..<min(chars.count, i + 7)]) == image {
                out.append(image); i += 7; continue
            }
            if c.isLetter {
                var j = i
                while j < chars.count && chars[j].isLetter { j += 1 }
                out.append(String(chars[i..<j])); i = j; continue
            }
            if c.isASCII && c.isNumber {
                var j = i
                while j < chars.count && chars[j].isASCII && chars[j].isNumber { j += 1 }
                if j + 1 < chars.count && chars[j] == "." && chars[j + 1].isASCII && chars[j + 1].isNumber {
                    j += 1
                    while j < chars.count && chars[j].isASCII && chars[j].isNumber { j += 1 }
                }
                out.append(String(chars[i..<j])); i = j; continue
            }
            out.append(String(c)); i += 1
        }
        return out
    }

    public func id(of piece: String) -> Int32? { index[piece] }

    /// Token ids of `text`; pieces outside the vocabulary become `<unk>`.
    public func encode(_ text: String) -> [Int32] {
        var unknown = 0
        return encode(text, unknownCount: &unknown)
    }

    /// As `encode(_:)`, adding the number of `<unk>` pieces to `unknownCount`.
    public func encode(_ text: String, unknownCount: inout Int) -> [Int32] {
        Self.pieces(text).map { p in
            if let id = index[p] { return id }
            unknownCount += 1
            return unkID
        }
    }

    /// The pieces of `text` that are not in the vocabulary, in order of appearance.
    public func unknownPieces(_ text: String) -> [String] { Self.pieces(text).filter { index[$0] == nil } }

    /// Text of the ids; special tokens other than `<unk>` and `<image>` are dropped.
    public func decode<C: Collection>(_ ids: C) -> String where C.Element == Int32 {
        var pieces: [String] = []
        for id in ids {
            guard id >= 0, Int(id) < tokens.count else { pieces.append(Self.unk); continue }
            if id == padID || id == bosID || id == eosID || id == sepID { continue }
            pieces.append(tokens[Int(id)])
        }
        return Self.detokenize(pieces)
    }

    /// Joins pieces the way the generator writes text: no space before `. , ? ! : ; ] )`,
    /// none after `[ (`, and none inside brackets after a comma (so boxes read `[0.12,0.40,…]`).
    public static func detokenize(_ pieces: [String]) -> String {
        var out = ""
        var depth = 0
        var prev: String? = nil
        for p in pieces {
            if let q = prev {
                let noSpace = [".", ",", "?", "!", ":", ";", "]", ")"].contains(p) || q == "[" || q == "("
                    || (depth > 0 && q == ",")
                if !noSpace { out += " " }
            }
            out += p
            if p == "[" { depth += 1 } else if p == "]" { depth = max(0, depth - 1) }
            prev = p
        }
        return out
    }

    // MARK: HDF5

    /// Writes the vocabulary under `group` (default `/tokenizer`) of an open file, for
    /// example next to the model weights of a checkpoint: `tokens` (strings, in id order)
    /// plus attributes `kind`, `format_version` and the special token ids.
    public func write(to file: H5File, group: String = "/tokenizer") throws {
        let g = group.hasSuffix("/") ? String(group.dropLast()) : group
        try file.write(strings: tokens, at: g + "/tokens")
        try file.setAttribute("kind", .string("pilot-word-level"), at: g + "/tokens")
        try file.setAttribute("format_version", .int(Self.formatVersion), at: g + "/tokens")
        try file.setAttribute("specials", .strings(Self.specials), at: g + "/tokens")
    }

    public static func read(from file: H5File, group: String = "/tokenizer") throws -> Tokenizer {
        let g = group.hasSuffix("/") ? String(group.dropLast()) : group
        guard file.exists(g + "/tokens") else {
            throw PilotError.notFound(file: file.path, object: g + "/tokens")
        }
        do { return try Tokenizer(tokens: try file.readStrings(at: g + "/tokens")) }
        catch let PilotError.invalidArgument(msg) {
            throw PilotError.message("file '\(file.path)' \(g)/tokens: \(msg)")
        }
    }

    /// Writes a standalone tokenizer file (atomic commit).
    public func save(path: String) throws {
        let f = try H5File.create(path)
        try write(to: f)
        try f.commit()
    }

    public static func load(path: String) throws -> Tokenizer {
        let f = try H5File.open(path)
        defer { f.close() }
        return try read(from: f)
    }
}

/// The text part of the model's sequence: `[BOS] instruction [SEP] answer [EOS]`, padded
/// with PAD to `textLength` (48 by default; the 16 visual tokens come before it).
public struct SequenceLayout: Sendable, Equatable {
    public var textLength: Int
    /// When instruction + answer do not fit: `false` throws, `true` drops instruction tokens
    /// from the front (the question is at the end of every instruction) and then answer tokens.
    public var truncate: Bool

    public init(textLength: Int = 48, truncate: Bool = false) {
        self.textLength = textLength
        self.truncate = truncate
    }

    /// Room for instruction + answer tokens (textLength minus BOS, SEP and EOS).
    public var contentLength: Int { textLength - 3 }
}

/// One example as model input.
///
/// `ids[i]` is the text token at position i. `targetMask[i]` is 1 where `ids[i]` is a token
/// the model is trained to produce (the answer tokens and EOS) and 0 elsewhere, so with
/// next-token prediction the loss at output position i−1 has target `ids[i]` and weight
/// `targetMask[i]`. `promptLength` is the number of tokens up to and including SEP (what a
/// generator feeds before decoding), and `length` the number of non-PAD tokens.
public struct EncodedExample: Equatable, Sendable {
    public var ids: [Int32]
    public var targetMask: [Float]
    public var promptLength: Int
    public var length: Int
    public var unknownCount: Int
    public var truncated: Bool

    public init(ids: [Int32], targetMask: [Float], promptLength: Int, length: Int, unknownCount: Int, truncated: Bool) {
        self.ids = ids; self.targetMask = targetMask; self.promptLength = promptLength
        self.length = length; self.unknownCount = unknownCount; self.truncated = truncated
    }
}

extension Tokenizer {
    /// `[BOS] instruction [SEP] answer [EOS] PAD…` and its target mask.
    public func encode(instruction: String, answer: String, layout: SequenceLayout = SequenceLayout(), id: String = "") throws -> EncodedExample {
        var unknown = 0
        var ins = encode(instruction, unknownCount: &unknown)
        var ans = encode(answer, unknownCount: &unknown)
        var truncated = false
        if ins.count + ans.count > layout.contentLength {
            guard layout.truncate else {
                throw PilotError.invalidArgument("example '\(id)': instruction (\(ins.count) tokens) + answer (\(ans.count) tokens) exceed the \(layout.contentLength) text tokens of the layout; shorten it or encode with SequenceLayout(truncate: true)")
            }
            truncated = true
            let keepAnswer = min(ans.count, layout.contentLength - min(ins.count, layout.contentLength / 2))
            ans = Array(ans.prefix(keepAnswer))
            ins = Array(ins.suffix(layout.contentLength - ans.count))
        }
        var ids = [bosID] + ins + [sepID] + ans + [eosID]
        let length = ids.count
        var mask = [Float](repeating: 0, count: layout.textLength)
        for i in (ins.count + 2)..<length { mask[i] = 1 }
        ids += [Int32](repeating: padID, count: layout.textLength - length)
        return EncodedExample(ids: ids, targetMask: mask, promptLength: ins.count + 2, length: length,
                              unknownCount: unknown, truncated: truncated)
    }

    /// The example's conversation. A single exchange is `[BOS] instruction [SEP] answer [EOS]`; a
    /// multi-turn one is `[BOS] h1 [SEP] a1 [EOS] h2 [SEP] a2 [EOS] …`, every answer and its EOS a
    /// target (as LLaVA trains), and `promptLength` ends at the SEP of exchange `evalTurn`.
    /// When the whole conversation does not fit: the exchanges that fit are kept, starting at
    /// `evalTurn` and adding the ones before it (its context), then the ones after it; only when
    /// exchange `evalTurn` alone does not fit does `layout.truncate` decide (throw, or cut it as a
    /// single exchange is cut). `truncated` says whether anything was left out.
    public func encode(_ example: Example, layout: SequenceLayout = SequenceLayout()) throws -> EncodedExample {
        if example.followUps.isEmpty && example.evalTurn == 0 {
            return try encode(instruction: example.instruction, answer: example.answer, layout: layout, id: example.id)
        }
        let exchanges = example.exchanges
        let k = max(0, min(example.evalTurn, exchanges.count - 1))
        var unknown = 0
        let enc = exchanges.map { (encode($0.human, unknownCount: &unknown), encode($0.gpt, unknownCount: &unknown)) }
        func cost(_ i: Int) -> Int { enc[i].0.count + enc[i].1.count + 2 }
        let budget = layout.textLength - 1
        guard cost(k) <= budget else {
            var e = try encode(instruction: exchanges[k].human, answer: exchanges[k].gpt, layout: layout,
                               id: example.id + (k > 0 ? " (exchange \(k + 1))" : ""))
            e.truncated = true
            return e
        }
        var first = k, last = k, used = cost(k)
        while first > 0 && used + cost(first - 1) <= budget { first -= 1; used += cost(first) }
        while last + 1 < exchanges.count && used + cost(last + 1) <= budget { last += 1; used += cost(last) }
        var ids: [Int32] = [bosID]
        var mask: [Float] = [0]
        var promptLength = 0
        for i in first...last {
            ids += enc[i].0; mask += [Float](repeating: 0, count: enc[i].0.count)
            ids.append(sepID); mask.append(0)
            if i == k { promptLength = ids.count }
            ids += enc[i].1; mask += [Float](repeating: 1, count: enc[i].1.count)
            ids.append(eosID); mask.append(1)
        }
        let length = ids.count
        ids += [Int32](repeating: padID, count: layout.textLength - length)
        mask += [Float](repeating: 0, count: layout.textLength - length)
        var unknownKept = 0
        for i in first...last { unknownKept += enc[i].0.filter { $0 == unkID }.count + enc[i].1.filter { $0 == unkID }.count }
        return EncodedExample(ids: ids, targetMask: mask, promptLength: promptLength, length: length,
                              unknownCount: unknownKept, truncated: first > 0 || last < exchanges.count - 1)
    }

    /// `[BOS] instruction [SEP]` (unpadded): the prompt for generation.
    public func encodePrompt(_ instruction: String) -> [Int32] { [bosID] + encode(instruction) + [sepID] }

    /// The answer text of generated ids: everything up to the first EOS (BOS/SEP/PAD dropped).
    public func decodeAnswer(_ ids: [Int32]) -> String {
        decode(ids.prefix { $0 != eosID })
    }
}
