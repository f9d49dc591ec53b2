import PilotCore
import PilotData

/// How examples become the text part of a model's sequence and how generated ids become an answer.
///
/// Two codecs exist: `WordLevelCodec`, the built-in benchmark model's `[BOS] instruction [SEP] answer
/// [EOS]` over its word-level tokenizer (visual tokens first), and `ChatCodec`, an imported LM's own
/// tokenizer and chat template with the image inside the user turn. Both produce `EncodedExample`s
/// whose `targetMask` marks exactly the tokens the loss covers.
public protocol ExampleCodec: Sendable {
    /// Ids the codec can produce (the model's vocabulary must cover them).
    var vocabularySize: Int { get }
    /// Text tokens that come before the visual tokens (the model config's `visualOffset`).
    var visualPosition: Int { get }
    /// The id that ends an answer in generation (it is part of the trained target).
    var stopToken: Int32 { get }
    /// The fewest text tokens the layout needs around one exchange (template tokens, one answer token
    /// and the end of turn): a shorter text length is refused.
    var minimumTextLength: Int { get }
    /// The example laid out in `textLength` tokens: ids, target mask, prompt length for evaluation.
    /// With `truncate`, a conversation that does not fit is cut (and `truncated` set); without it,
    /// an error names the example.
    func encode(_ example: Example, textLength: Int, truncate: Bool) throws -> EncodedExample
    /// The answer text of generated ids (everything before the stop token, special tokens dropped).
    func decodeAnswer(_ ids: [Int32]) -> String
    /// One line for logs: which tokenizer and layout.
    var summary: String { get }
}

/// The built-in benchmark layout: `[BOS] instruction [SEP] answer [EOS] PAD…` over the scenario's
/// word-level tokenizer, visual tokens before the text (`Tokenizer.encode(_:layout:)`).
public struct WordLevelCodec: ExampleCodec {
    public let tokenizer: Tokenizer
    public init(_ tokenizer: Tokenizer) { self.tokenizer = tokenizer }

    public var vocabularySize: Int { tokenizer.count }
    public var visualPosition: Int { 0 }
    public var stopToken: Int32 { tokenizer.eosID }
    public var minimumTextLength: Int { 4 }
    public var summary: String { "word-level tokenizer (\(tokenizer.count) tokens), [BOS] instruction [SEP] answer [EOS]" }

    public func encode(_ example: Example, textLength: Int, truncate: Bool) throws -> EncodedExample {
        try tokenizer.encode(example, layout: SequenceLayout(textLength: textLength, truncate: truncate))
    }

    public func decodeAnswer(_ ids: [Int32]) -> String { tokenizer.decodeAnswer(ids) }
}

/// How many prepared examples the layout cut to fit, for the progress output.
public struct TruncationCount: Sendable, Equatable {
    public var truncated = 0
    public var total = 0
    public init(truncated: Int = 0, total: Int = 0) { self.truncated = truncated; self.total = total }
    /// "3 of 120 examples were cut to fit 96 text tokens", or nil when none was.
    public func message(textLength: Int, what: String) -> String? {
        guard truncated > 0 else { return nil }
        return "\(what): \(truncated) of \(total) examples were cut to fit \(textLength) text tokens (earlier turns or the start of a long instruction dropped); raise the text length to keep them whole"
    }
}
