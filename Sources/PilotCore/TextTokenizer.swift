/// What every tokenizer in the project offers: the word-level one of the built-in benchmark model
/// (`PilotData.Tokenizer`) and the byte-level BPE of pretrained models (`PilotLM.BPETokenizer`).
/// Ids are Int32, as stored in shards and fed to the embedding.
public protocol TextTokenizer: Sendable {
    /// Number of ids (the embedding's rows may be more, never fewer).
    var vocabularySize: Int { get }
    /// Ids of `text`. Special-token strings that the tokenizer knows (`<|im_start|>`) become their id.
    func encode(_ text: String) -> [Int32]
    /// Text of `ids`; `skipSpecial` drops special tokens (BOS, EOS, chat tags) from the output.
    func decode(_ ids: [Int32], skipSpecial: Bool) -> String
    /// The token's string form as stored in the vocabulary (for `pilot tokenize`'s pieces).
    func piece(_ id: Int32) -> String
}
