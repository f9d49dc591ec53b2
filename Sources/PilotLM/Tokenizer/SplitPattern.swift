/// The pre-tokenizer regular expressions we know, each run by a hand-written matcher that gives exactly the
/// matches Oniguruma (used by Hugging Face `tokenizers`) gives, including the backtracking of `\s+(?!\S)`.
/// A tokenizer.json with any other pattern is refused, showing the pattern.
public enum SplitPattern: String, Sendable, CaseIterable {
    /// GPT-2 (also the `ByteLevel` pre-tokenizer's own regex; SmolLM2, StarCoder).
    case gpt2 = #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#
    /// Llama 3: case-insensitive contractions, one optional non-letter before letters, numbers in threes.
    case llama3 = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    /// Qwen2: Llama 3's pattern with single digits.
    case qwen2 = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

    /// End of the match that starts at `i` in `text[i..<end]` (every scalar starts a match with these patterns,
    /// so matches tile the piece). `cls` holds `ScalarClass` flags of `text`.
    @inline(__always)
    func matchEnd(_ text: UnsafeBufferPointer<UInt32>, _ cls: UnsafeBufferPointer<UInt8>, _ i: Int, _ end: Int) -> Int {
        switch self {
        case .gpt2: return Self.gpt2Match(text, cls, i, end)
        case .llama3: return Self.llamaMatch(text, cls, i, end, maxDigits: 3)
        case .qwen2: return Self.llamaMatch(text, cls, i, end, maxDigits: 1)
        }
    }

    private static let quote: UInt32 = 0x27, spaceChar: UInt32 = 0x20, cr: UInt32 = 0x0D, lf: UInt32 = 0x0A
    private static let letterOrNumberOrSpace = ScalarClass.letter | ScalarClass.number | ScalarClass.space

    /// `'s|'t|'re|'ve|'m|'ll|'d`, optionally case-insensitive (Unicode folding adds U+017F for s).
    @inline(__always)
    private static func contraction(_ text: UnsafeBufferPointer<UInt32>, _ i: Int, _ end: Int, ignoreCase: Bool) -> Int? {
        guard text[i] == quote, i + 1 < end else { return nil }
        func fold(_ c: UInt32) -> UInt32 {
            guard ignoreCase else { return c }
            if c >= 0x41 && c <= 0x5A { return c + 32 }
            return c == 0x17F ? 0x73 : c
        }
        let a = fold(text[i + 1])
        if a == 0x73 || a == 0x74 || a == 0x6D || a == 0x64 { return i + 2 }  // s t m d
        guard i + 2 < end else { return nil }
        let b = fold(text[i + 2])
        if (a == 0x72 && b == 0x65) || (a == 0x76 && b == 0x65) || (a == 0x6C && b == 0x6C) { return i + 3 }  // re ve ll
        return nil
    }

    /// `\s+(?!\S)|\s+` at a whitespace scalar: the whole run if it ends the piece, else the run less its last
    /// scalar (which then leads the next word), else the single scalar.
    @inline(__always)
    private static func whitespaceRun(_ cls: UnsafeBufferPointer<UInt8>, _ i: Int, _ end: Int) -> Int {
        var r = i
        while r < end && cls[r] & ScalarClass.space != 0 { r += 1 }
        if r == end { return end }
        return r - i >= 2 ? r - 1 : r
    }

    private static func gpt2Match(_ text: UnsafeBufferPointer<UInt32>, _ cls: UnsafeBufferPointer<UInt8>, _ i: Int, _ end: Int) -> Int {
        if let e = contraction(text, i, end, ignoreCase: false) { return e }
        let j = text[i] == spaceChar ? i + 1 : i
        if j < end {
            let k = cls[j]
            if k & ScalarClass.letter != 0 {
                var e = j + 1
                while e < end && cls[e] & ScalarClass.letter != 0 { e += 1 }
                return e
            }
            if k & ScalarClass.number != 0 {
                var e = j + 1
                while e < end && cls[e] & ScalarClass.number != 0 { e += 1 }
                return e
            }
            if k & letterOrNumberOrSpace == 0 {
                var e = j + 1
                while e < end && cls[e] & letterOrNumberOrSpace == 0 { e += 1 }
                return e
            }
        }
        return whitespaceRun(cls, i, end)
    }

    private static func llamaMatch(_ text: UnsafeBufferPointer<UInt32>, _ cls: UnsafeBufferPointer<UInt8>, _ i: Int, _ end: Int,
                                   maxDigits: Int) -> Int {
        if let e = contraction(text, i, end, ignoreCase: true) { return e }
        let c = text[i], k = cls[i]
        // [^\r\n\p{L}\p{N}]?\p{L}+
        var start = -1
        if k & ScalarClass.letter != 0 {
            start = i
        } else if k & ScalarClass.number == 0 && c != cr && c != lf && i + 1 < end && cls[i + 1] & ScalarClass.letter != 0 {
            start = i + 1
        }
        if start >= 0 {
            var e = start + 1
            while e < end && cls[e] & ScalarClass.letter != 0 { e += 1 }
            return e
        }
        // \p{N}{1,maxDigits}
        if k & ScalarClass.number != 0 {
            var e = i + 1
            while e < end && e - i < maxDigits && cls[e] & ScalarClass.number != 0 { e += 1 }
            return e
        }
        // ` ?[^\s\p{L}\p{N}]+[\r\n]*`
        let j = c == spaceChar ? i + 1 : i
        if j < end && cls[j] & letterOrNumberOrSpace == 0 {
            var e = j + 1
            while e < end && cls[e] & letterOrNumberOrSpace == 0 { e += 1 }
            while e < end && (text[e] == cr || text[e] == lf) { e += 1 }
            return e
        }
        // \s*[\r\n]+ : through the last line break of the whitespace run
        var r = i, lastBreak = -1
        while r < end && cls[r] & ScalarClass.space != 0 {
            if text[r] == cr || text[r] == lf { lastBreak = r }
            r += 1
        }
        if lastBreak >= 0 { return lastBreak + 1 }
        return whitespaceRun(cls, i, end)
    }
}
