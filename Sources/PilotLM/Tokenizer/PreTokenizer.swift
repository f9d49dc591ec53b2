/// One step of the pre-tokenizer chain that cuts text into words before BPE (tokenizer.json's `pre_tokenizer`,
/// a `Sequence` flattened into steps). Each step refines the current pieces; empty pieces are dropped.
public enum PreTokenizer: Sendable, Equatable {
    /// `Digits`: every numeric scalar its own piece (`individual`), or each run of them one piece.
    case digits(individual: Bool)
    /// `Split` with one of the known patterns and behaviour `Isolated` (matches and gaps are pieces).
    case split(SplitPattern)
    /// `ByteLevel`: optionally a space before every piece that lacks one, optionally the GPT-2 regex.
    /// It is always the last step, and the BPE then works on the pieces' UTF-8 bytes.
    case byteLevel(addPrefixSpace: Bool, useRegex: Bool)
}

/// The text of one segment (between added tokens) as Unicode scalars with their class flags, and the pieces
/// (half-open scalar ranges) the steps have cut so far.
struct PreTokenizedText {
    var scalars: [UInt32]
    var classes: [UInt8]
    var pieces: [Range<Int>]

    init(scalars: [UInt32]) {
        self.scalars = scalars
        classes = scalars.map(ScalarClass.of)
        pieces = scalars.isEmpty ? [] : [0..<scalars.count]
    }

    mutating func apply(_ step: PreTokenizer) {
        switch step {
        case let .digits(individual): splitDigits(individual: individual)
        case let .split(pattern): split(pattern)
        case let .byteLevel(addPrefixSpace, useRegex):
            if addPrefixSpace { prefixSpaces() }
            if useRegex { split(.gpt2) }
        }
    }

    private mutating func splitDigits(individual: Bool) {
        var out: [Range<Int>] = []
        out.reserveCapacity(pieces.count * 2)
        for piece in pieces {
            var i = piece.lowerBound
            while i < piece.upperBound {
                let numeric = classes[i] & ScalarClass.number != 0
                var e = i + 1
                if !(numeric && individual) {
                    while e < piece.upperBound && (classes[e] & ScalarClass.number != 0) == numeric { e += 1 }
                }
                out.append(i..<e)
                i = e
            }
        }
        pieces = out
    }

    private mutating func split(_ pattern: SplitPattern) {
        var out: [Range<Int>] = []
        out.reserveCapacity(pieces.count + scalars.count / 3)
        scalars.withUnsafeBufferPointer { text in
            classes.withUnsafeBufferPointer { cls in
                for piece in pieces {
                    var i = piece.lowerBound
                    while i < piece.upperBound {
                        let e = pattern.matchEnd(text, cls, i, piece.upperBound)
                        out.append(i..<e)
                        i = e
                    }
                }
            }
        }
        pieces = out
    }

    /// `add_prefix_space`: a U+0020 before every piece that does not start with one.
    private mutating func prefixSpaces() {
        var s: [UInt32] = [], c: [UInt8] = [], p: [Range<Int>] = []
        s.reserveCapacity(scalars.count + pieces.count)
        var last = 0
        for piece in pieces {
            s.append(contentsOf: scalars[last..<piece.lowerBound])
            let start = s.count
            if scalars[piece.lowerBound] != 0x20 { s.append(0x20) }
            s.append(contentsOf: scalars[piece])
            p.append(start..<s.count)
            last = piece.upperBound
        }
        s.append(contentsOf: scalars[last...])
        c = s.map(ScalarClass.of)
        scalars = s; classes = c; pieces = p
    }
}
