import PilotCore

/// The tokenizer from GGUF metadata (`tokenizer.ggml.*`), for `tokenizer.ggml.model == "gpt2"`.
extension BPETokenizer {
    /// llama.cpp pre-tokenizer names (`tokenizer.ggml.pre`) and the steps that reproduce them.
    public static let ggufPreTokenizers: [String: [PreTokenizer]] = [
        "smollm": [.digits(individual: true), .byteLevel(addPrefixSpace: false, useRegex: true)],
        "gpt2": [.byteLevel(addPrefixSpace: false, useRegex: true)],
        "llama-bpe": [.split(.llama3), .byteLevel(addPrefixSpace: false, useRegex: false)],
        "qwen2": [.split(.qwen2), .byteLevel(addPrefixSpace: false, useRegex: false)],
    ]

    /// `tokens` (`tokenizer.ggml.tokens`), `merges` ("a b" strings), `tokenTypes` (`tokenizer.ggml.token_type`:
    /// 3 = control, made special added tokens; 4 = user-defined, made non-special added tokens), `preTokenizer`
    /// (`tokenizer.ggml.pre`), special ids and `tokenizer.ggml.add_bos_token`. Llama 3 (`llama-bpe`) ignores
    /// merges for words in the vocabulary, as llama.cpp and tokenizer.json do.
    public init(ggufTokens tokens: [String], merges: [String], tokenTypes: [Int], preTokenizer: String,
                bos: Int32?, eos: Int32?, unk: Int32?, pad: Int32?, addBOS: Bool, source: String = "GGUF metadata") throws {
        guard let steps = Self.ggufPreTokenizers[preTokenizer] else {
            throw PilotError.invalidArgument("\(source): tokenizer.ggml.pre '\(preTokenizer)' is not supported; supported: \(Self.ggufPreTokenizers.keys.sorted())")
        }
        guard tokenTypes.isEmpty || tokenTypes.count == tokens.count else {
            throw PilotError.invalidArgument("\(source): tokenizer.ggml.token_type has \(tokenTypes.count) entries for \(tokens.count) tokens")
        }
        var pairs: [(String, String)] = []
        pairs.reserveCapacity(merges.count)
        for (i, m) in merges.enumerated() {
            let parts = m.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2 else { throw PilotError.invalidArgument("\(source): tokenizer.ggml.merges[\(i)] '\(m)' is not 'a b'") }
            pairs.append((String(parts[0]), String(parts[1])))
        }
        var added: [AddedToken] = []
        for (i, type) in tokenTypes.enumerated() where type == 3 || type == 4 {
            added.append(AddedToken(id: Int32(i), content: tokens[i], special: type == 3))
        }
        try self.init(tokens: tokens, merges: pairs, addedTokens: added, preTokenizers: steps,
                      ignoreMerges: preTokenizer == "llama-bpe", addsBOS: addBOS, bosID: bos, eosID: eos, padID: pad, unkID: unk,
                      source: source)
    }
}
