import Foundation
import PilotCore

/// Byte-level BPE as Hugging Face `tokenizers` runs it for GPT-2-style vocabularies (SmolLM2, Llama 3, Qwen2):
/// added tokens are cut out of the raw text first, the rest is pre-tokenized into words (`PreTokenizer`),
/// each word's UTF-8 bytes become byte tokens, and merges are applied lowest rank first (leftmost on ties).
/// Decoding maps the tokens' characters back to bytes and reads them as UTF-8 (invalid bytes become U+FFFD).
/// `encode` never adds BOS; callers that need it check `addsBOS` and prepend `bosID`.
/// Loading: `BPETokenizer+JSON.swift` (tokenizer.json) and `BPETokenizer+GGUF.swift` (GGUF metadata).
public struct BPETokenizer: TextTokenizer {
    /// Token strings by id (byte-level characters; added tokens as written). "" where an id has no token.
    public let tokens: [String]
    /// Added tokens (chat tags, BOS/EOS and any others), in tokenizer.json order.
    public let addedTokens: [AddedToken]
    /// The pre-tokenizer steps, ending with `.byteLevel`.
    public let preTokenizers: [PreTokenizer]
    /// Merges in rank order, as (left, right) token strings.
    public let merges: [(String, String)]
    /// `ignore_merges`: a word that is itself in the vocabulary is that one token (Llama 3).
    public let ignoreMerges: Bool
    /// Text is NFC-normalized before pre-tokenization.
    public let normalizesNFC: Bool
    /// Whether the model expects BOS before every sequence (TemplateProcessing, GGUF `add_bos_token`).
    public var addsBOS: Bool
    public var bosID: Int32?
    public var eosID: Int32?
    public var padID: Int32?
    /// The model's unknown token (tokenizer.json or tokenizer_config.json `unk_token`, GGUF `unknown_token_id`).
    public var unkID: Int32?
    /// The BPE model's own `unk_token`: it stands in for bytes without a token; nil drops them, as `tokenizers`
    /// does (a GGUF gives none, as gguf_to_hf.py writes none). `fuseUnknown`: one for a run of such bytes.
    public let bpeUnknownID: Int32?
    public let fuseUnknown: Bool

    let tokenIDs: [String: Int32]
    let mergeTable: MergeTable
    /// Vocabulary id of the single-byte token of each byte (-1 where there is none).
    let byteIDs: [Int32]
    let rawMatcher: AddedTokenMatcher
    let normalizedMatcher: AddedTokenMatcher
    let specialIDs: Set<Int32>
    let cache = WordCache()

    public var vocabularySize: Int { tokens.count }

    /// The tokenizer from its parts; `source` names where they came from in error messages.
    public init(tokens: [String], merges: [(String, String)], addedTokens: [AddedToken], preTokenizers: [PreTokenizer],
                ignoreMerges: Bool = false, normalizesNFC: Bool = false, addsBOS: Bool = false,
                bosID: Int32? = nil, eosID: Int32? = nil, padID: Int32? = nil, unkID: Int32? = nil,
                bpeUnknownID: Int32? = nil, fuseUnknown: Bool = false, source: String) throws {
        guard case .byteLevel = preTokenizers.last else {
            throw PilotError.invalidArgument("\(source): the pre-tokenizer must end with ByteLevel (byte-level BPE); found \(preTokenizers)")
        }
        if preTokenizers.dropLast().contains(where: { if case .byteLevel = $0 { return true } else { return false } }) {
            throw PilotError.invalidArgument("\(source): ByteLevel must be the last pre-tokenizer step; found \(preTokenizers)")
        }
        var all = tokens
        var ids: [String: Int32] = [:]
        ids.reserveCapacity(tokens.count)
        for (i, t) in tokens.enumerated() where !t.isEmpty && ids[t] == nil { ids[t] = Int32(i) }
        for a in addedTokens {
            guard a.id >= 0 && Int(a.id) < max(tokens.count, 1) + 1_000_000 else {
                throw PilotError.invalidArgument("\(source): added token '\(a.content)' has id \(a.id), outside the vocabulary (\(tokens.count) tokens)")
            }
            if Int(a.id) >= all.count { all += [String](repeating: "", count: Int(a.id) + 1 - all.count) }
            if all[Int(a.id)].isEmpty { all[Int(a.id)] = a.content }
            if ids[a.content] == nil { ids[a.content] = a.id }
        }
        var table = MergeTable(capacity: merges.count)
        for (rank, (a, b)) in merges.enumerated() {
            guard let ia = ids[a], let ib = ids[b] else {
                throw PilotError.invalidArgument("\(source): merge \(rank) '\(a) \(b)' names a token that is not in the vocabulary")
            }
            guard let merged = ids[a + b] else {
                throw PilotError.invalidArgument("\(source): merge \(rank) '\(a) \(b)' makes '\(a + b)', which is not in the vocabulary")
            }
            table.insert(ia, ib, rank: Int32(rank), result: merged)
        }
        for (name, id) in [("bos", bosID), ("eos", eosID), ("pad", padID), ("unk", unkID), ("BPE unk_token", bpeUnknownID)] {
            if let id, id < 0 || Int(id) >= all.count {
                throw PilotError.invalidArgument("\(source): \(name) id \(id) is outside the vocabulary (\(all.count) tokens)")
            }
        }
        self.tokens = all
        self.addedTokens = addedTokens
        self.preTokenizers = preTokenizers
        self.merges = merges
        self.ignoreMerges = ignoreMerges
        self.normalizesNFC = normalizesNFC
        self.addsBOS = addsBOS
        self.bosID = bosID; self.eosID = eosID; self.padID = padID; self.unkID = unkID
        self.bpeUnknownID = bpeUnknownID
        self.fuseUnknown = fuseUnknown
        tokenIDs = ids
        mergeTable = table
        byteIDs = (0..<256).map { ids[String(ByteLevel.scalarOfByte[$0])] ?? -1 }
        rawMatcher = AddedTokenMatcher(addedTokens.filter { !$0.normalized })
        normalizedMatcher = AddedTokenMatcher(addedTokens.filter { $0.normalized })
        specialIDs = Set(addedTokens.filter(\.special).map(\.id))
    }

    /// Id of a token string (a vocabulary entry or an added token).
    public func id(of token: String) -> Int32? { tokenIDs[token] }

    public func piece(_ id: Int32) -> String { id >= 0 && Int(id) < tokens.count ? tokens[Int(id)] : "" }

    /// Whether `id` is a special added token (dropped by `decode(skipSpecial: true)`).
    public func isSpecial(_ id: Int32) -> Bool { specialIDs.contains(id) }

    // MARK: Encoding

    public func encode(_ text: String) -> [Int32] {
        var out: [Int32] = []
        out.reserveCapacity(text.utf8.count / 3 + 4)
        var scalars: [UInt32] = []
        scalars.reserveCapacity(text.utf8.count)
        for s in text.unicodeScalars { scalars.append(s.value) }
        var word: [UInt8] = []
        for (range, token) in rawMatcher.split(scalars, rawMatcher.isEmpty ? [] : scalars.map(ScalarClass.of)) {
            if let token { out.append(token.id); continue }
            var segment = Array(scalars[range])
            if normalizesNFC { segment = Self.nfc(segment) }
            let inner = normalizedMatcher.isEmpty ? [(range: 0..<segment.count, token: AddedToken?.none)]
                : normalizedMatcher.split(segment, segment.map(ScalarClass.of))
            for (r, t) in inner {
                if let t { out.append(t.id); continue }
                encodeText(r.count == segment.count ? segment : Array(segment[r]), into: &out, word: &word)
            }
        }
        return out
    }

    /// Pre-tokenizes a text segment (no added tokens in it) and appends its words' ids.
    private func encodeText(_ scalars: [UInt32], into out: inout [Int32], word: inout [UInt8]) {
        guard !scalars.isEmpty else { return }
        var text = PreTokenizedText(scalars: scalars)
        for step in preTokenizers { text.apply(step) }
        for piece in text.pieces {
            word.removeAll(keepingCapacity: true)
            for i in piece { Self.appendUTF8(text.scalars[i], to: &word) }
            if let ids = cache.get(word) {
                out.append(contentsOf: ids)
            } else {
                let ids = mergeWord(word)
                cache.put(word, ids)
                out.append(contentsOf: ids)
            }
        }
    }

    @inline(__always)
    static func appendUTF8(_ v: UInt32, to out: inout [UInt8]) {
        if v < 0x80 {
            out.append(UInt8(v))
        } else if v < 0x800 {
            out.append(UInt8(0xC0 | (v >> 6))); out.append(UInt8(0x80 | (v & 0x3F)))
        } else if v < 0x10000 {
            out.append(UInt8(0xE0 | (v >> 12))); out.append(UInt8(0x80 | ((v >> 6) & 0x3F))); out.append(UInt8(0x80 | (v & 0x3F)))
        } else {
            out.append(UInt8(0xF0 | (v >> 18))); out.append(UInt8(0x80 | ((v >> 12) & 0x3F)))
            out.append(UInt8(0x80 | ((v >> 6) & 0x3F))); out.append(UInt8(0x80 | (v & 0x3F)))
        }
    }

    /// BPE on one word's bytes: start from byte tokens, then repeatedly merge the adjacent pair of lowest rank,
    /// the leftmost among equal ranks (the order of `tokenizers`' merge queue).
    func mergeWord(_ word: [UInt8]) -> [Int32] {
        if ignoreMerges, let id = tokenIDs[ByteLevel.encode(word)] { return [id] }
        let symbols = byteSymbols(word)
        return symbols.count > 96 ? mergeLong(symbols) : mergeShort(symbols)
    }

    /// The byte tokens of a word (bytes without one become `bpeUnknownID` or are dropped).
    func byteSymbols(_ word: [UInt8]) -> [Int32] {
        var symbols: [Int32] = []
        symbols.reserveCapacity(word.count)
        for b in word {
            let id = byteIDs[Int(b)]
            if id >= 0 {
                symbols.append(id)
            } else if let unk = bpeUnknownID {
                if !(fuseUnknown && symbols.last == unk) { symbols.append(unk) }
            }
        }
        return symbols
    }

    /// Merging by scanning for the best pair each step: O(n²), fastest for the short words of most text.
    func mergeShort(_ start: [Int32]) -> [Int32] {
        var symbols = start
        guard symbols.count > 1 else { return symbols }
        // rank of the pair starting at each symbol (Int32.max: no merge)
        var ranks = [Int32](repeating: .max, count: symbols.count)
        var results = [Int32](repeating: 0, count: symbols.count)
        func update(_ i: Int) {
            if i + 1 < symbols.count, let m = mergeTable.lookup(symbols[i], symbols[i + 1]) {
                ranks[i] = m.rank; results[i] = m.result
            } else {
                ranks[i] = .max
            }
        }
        for i in 0..<symbols.count - 1 { update(i) }
        ranks[symbols.count - 1] = .max
        while symbols.count > 1 {
            var best = -1, bestRank = Int32.max
            for i in 0..<symbols.count - 1 where ranks[i] < bestRank { bestRank = ranks[i]; best = i }
            guard best >= 0 else { break }
            symbols[best] = results[best]
            symbols.remove(at: best + 1)
            ranks.remove(at: best + 1); results.remove(at: best + 1)
            update(best)
            if best > 0 { update(best - 1) }
        }
        return symbols
    }

    /// The same merge order for long words in O(n log n): symbols in a linked list and a min-heap of
    /// (rank, position) pairs, stale entries skipped when popped (the structure of `tokenizers`' `merge_all`).
    func mergeLong(_ start: [Int32]) -> [Int32] {
        var symbols = start
        let n = symbols.count
        guard n > 1 else { return symbols }
        var prev = (0..<n).map { $0 - 1 }, next = (0..<n).map { $0 + 1 }
        var alive = [Bool](repeating: true, count: n)
        var heap = MergeHeap()
        for i in 0..<n - 1 {
            if let m = mergeTable.lookup(symbols[i], symbols[i + 1]) { heap.push(rank: m.rank, pos: i, result: m.result) }
        }
        while let top = heap.pop() {
            let p = top.pos
            guard alive[p], next[p] < n, let m = mergeTable.lookup(symbols[p], symbols[next[p]]), m.result == top.result else { continue }
            let right = next[p]
            symbols[p] = m.result
            alive[right] = false
            next[p] = next[right]
            if next[p] < n { prev[next[p]] = p }
            if prev[p] >= 0, let l = mergeTable.lookup(symbols[prev[p]], symbols[p]) { heap.push(rank: l.rank, pos: prev[p], result: l.result) }
            if next[p] < n, let r = mergeTable.lookup(symbols[p], symbols[next[p]]) { heap.push(rank: r.rank, pos: p, result: r.result) }
        }
        return (0..<n).compactMap { alive[$0] ? symbols[$0] : nil }
    }

    /// NFC of a scalar sequence (the `NFC` normalizer).
    static func nfc(_ scalars: [UInt32]) -> [UInt32] {
        var view = String.UnicodeScalarView()
        for v in scalars { if let s = Unicode.Scalar(v) { view.append(s) } }
        return String(view).precomposedStringWithCanonicalMapping.unicodeScalars.map(\.value)
    }

    // MARK: Decoding

    public func decode(_ ids: [Int32], skipSpecial: Bool) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(ids.count * 4)
        for id in ids where id >= 0 && Int(id) < tokens.count {
            if skipSpecial && specialIDs.contains(id) { continue }
            ByteLevel.decode(tokens[Int(id)], into: &bytes)
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// Binary min-heap of candidate merges ordered by (rank, position): lowest rank first, leftmost on ties.
struct MergeHeap {
    private var items: [(rank: Int32, pos: Int, result: Int32)] = []

    private static func less(_ a: (rank: Int32, pos: Int, result: Int32), _ b: (rank: Int32, pos: Int, result: Int32)) -> Bool {
        a.rank != b.rank ? a.rank < b.rank : a.pos < b.pos
    }

    mutating func push(rank: Int32, pos: Int, result: Int32) {
        items.append((rank, pos, result))
        var i = items.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard Self.less(items[i], items[parent]) else { break }
            items.swapAt(i, parent); i = parent
        }
    }

    mutating func pop() -> (rank: Int32, pos: Int, result: Int32)? {
        guard let first = items.first else { return nil }
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var i = 0
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < items.count && Self.less(items[l], items[m]) { m = l }
                if r < items.count && Self.less(items[r], items[m]) { m = r }
                if m == i { break }
                items.swapAt(i, m); i = m
            }
        }
        return first
    }
}
