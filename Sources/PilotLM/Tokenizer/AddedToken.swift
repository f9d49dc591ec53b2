/// A token matched in the raw text before pre-tokenization (tokenizer.json's `added_tokens`; in a GGUF the
/// control tokens). `special` ones are the chat tags and BOS/EOS that `decode(skipSpecial: true)` drops.
public struct AddedToken: Sendable, Equatable {
    public var id: Int32
    public var content: String
    public var special: Bool
    /// Also take the whitespace on the left / right of the match into the token.
    public var lstrip: Bool
    public var rstrip: Bool
    /// Match only where no word character (alphanumeric or `_`) touches either side.
    public var singleWord: Bool
    /// Matched after normalization (in the normalized text) rather than in the raw text.
    public var normalized: Bool

    public init(id: Int32, content: String, special: Bool, lstrip: Bool = false, rstrip: Bool = false,
                singleWord: Bool = false, normalized: Bool = false) {
        self.id = id; self.content = content; self.special = special
        self.lstrip = lstrip; self.rstrip = rstrip; self.singleWord = singleWord; self.normalized = normalized
    }
}

/// Finds added tokens in scalar text as `tokenizers` does: leftmost-longest matches (its Aho-Corasick
/// automaton), then `single_word`, `lstrip` and `rstrip` applied to each match in order.
struct AddedTokenMatcher: Sendable {
    private var children: [[UInt32: Int32]] = [[:]]
    private var terminal: [Int32] = [-1]
    private var asciiFirst = [Bool](repeating: false, count: 128)
    private var otherFirst: Set<UInt32> = []
    private(set) var tokens: [AddedToken] = []

    init(_ tokens: [AddedToken]) {
        for t in tokens {
            guard let first = t.content.unicodeScalars.first?.value else { continue }
            var node = 0
            for s in t.content.unicodeScalars {
                if let next = children[node][s.value] {
                    node = Int(next)
                } else {
                    children.append([:]); terminal.append(-1)
                    children[node][s.value] = Int32(children.count - 1)
                    node = children.count - 1
                }
            }
            if terminal[node] < 0 {
                terminal[node] = Int32(self.tokens.count)
                self.tokens.append(t)
            }
            if first < 128 { asciiFirst[Int(first)] = true } else { otherFirst.insert(first) }
        }
    }

    var isEmpty: Bool { tokens.isEmpty }

    /// The text cut into gaps (token nil) and matched added tokens, covering `text` in order.
    func split(_ text: [UInt32], _ classes: [UInt8]) -> [(range: Range<Int>, token: AddedToken?)] {
        let n = text.count
        guard !tokens.isEmpty else { return n == 0 ? [] : [(0..<n, nil)] }
        var matches: [(Range<Int>, AddedToken)] = []
        var i = 0, startOffset = 0
        while i < n {
            let c = text[i]
            guard c < 128 ? asciiFirst[Int(c)] : otherFirst.contains(c) else { i += 1; continue }
            var node = 0, j = i, best = -1, bestEnd = i
            while j < n, let next = children[node][text[j]] {
                node = Int(next); j += 1
                if terminal[node] >= 0 { best = Int(terminal[node]); bestEnd = j }
            }
            guard best >= 0 else { i += 1; continue }
            let token = tokens[best]
            var start = i, stop = bestEnd
            i = bestEnd
            if token.singleWord {
                let wordBefore = start > 0 && Self.isWordChar(text[start - 1], classes[start - 1])
                let wordAfter = stop < n && Self.isWordChar(text[stop], classes[stop])
                if wordBefore || wordAfter { continue }
            }
            if token.lstrip {
                var s = start
                while s > 0 && classes[s - 1] & ScalarClass.space != 0 { s -= 1 }
                start = max(s, startOffset)
            }
            if token.rstrip {
                while stop < n && classes[stop] & ScalarClass.space != 0 { stop += 1 }
            }
            matches.append((start..<stop, token))
            startOffset = stop
            i = max(i, stop)
        }
        var out: [(range: Range<Int>, token: AddedToken?)] = []
        var last = 0
        for (r, t) in matches {
            if r.lowerBound > last { out.append((last..<r.lowerBound, nil)) }
            out.append((r, t))
            last = r.upperBound
        }
        if last < n { out.append((last..<n, nil)) }
        return out
    }

    private static func isWordChar(_ c: UInt32, _ cls: UInt8) -> Bool {
        c == 0x5F || cls & (ScalarClass.alphabetic | ScalarClass.number) != 0
    }
}
