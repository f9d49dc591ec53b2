import PilotCore

/// The word-level tokenizer behind the common `TextTokenizer` interface; `encode` and `decode(_:)` keep
/// their behaviour, `skipSpecial: false` keeps `<pad> <bos> <eos> <sep>` in the text.
extension Tokenizer: TextTokenizer {
    public var vocabularySize: Int { count }

    public func decode(_ ids: [Int32], skipSpecial: Bool) -> String {
        if skipSpecial { return decode(ids) }
        return Self.detokenize(ids.map(piece))
    }

    public func piece(_ id: Int32) -> String { id >= 0 && Int(id) < tokens.count ? tokens[Int(id)] : Self.unk }
}
