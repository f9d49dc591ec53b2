import PilotCore

extension BPETokenizer {
    /// The tokenizer stored in a GGUF file's metadata (`tokenizer.ggml.*`). Only byte-level BPE
    /// (`tokenizer.ggml.model` = `gpt2`) is read; SentencePiece GGUFs (`llama`) are refused by name.
    public static func fromGGUF(_ f: GGUFFile) throws -> BPETokenizer {
        let model = try f.string("tokenizer.ggml.model")
        guard model == "gpt2" else {
            throw PilotError.invalidArgument("\(f.path): tokenizer.ggml.model is '\(model)'; pilot reads byte-level BPE tokenizers ('gpt2', as SmolLM2, Llama 3 and Qwen2 use). Import the model's Hugging Face directory (with tokenizer.json) instead")
        }
        func id(_ key: String) throws -> Int32? {
            guard let v = try? f.int(key) else { return nil }
            guard let i = Int32(exactly: v) else {
                throw PilotError.invalidArgument("\(f.path): metadata key '\(key)' is \(v), not a token id; the file is corrupt")
            }
            return i
        }
        return try BPETokenizer(
            ggufTokens: f.strings("tokenizer.ggml.tokens"),
            merges: f.strings("tokenizer.ggml.merges"),
            tokenTypes: (try? f.ints("tokenizer.ggml.token_type")) ?? [],
            preTokenizer: (try? f.string("tokenizer.ggml.pre")) ?? "gpt2",
            bos: try id("tokenizer.ggml.bos_token_id"), eos: try id("tokenizer.ggml.eos_token_id"),
            unk: try id("tokenizer.ggml.unknown_token_id"), pad: try id("tokenizer.ggml.padding_token_id"),
            addBOS: (try? f.bool("tokenizer.ggml.add_bos_token")) ?? false,
            source: f.path + " (tokenizer metadata)")
    }
}
