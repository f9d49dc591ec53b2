import Foundation
import PilotCore
import PilotTensor

/// A pretrained LM loaded from a model directory (docs/models.md): config, weights, tokenizer and chat
/// format, everything the `--model` commands need. The directory is a Hugging Face layout; a
/// `pilot-model.json` from `pilot model import` is read when present (chat format, provenance), and a
/// plain Hugging Face directory works too when its chat template is one pilot knows.
public final class PretrainedLM {
    public let directory: String
    public let manifest: ModelManifest?
    public let config: LlamaConfig
    public let tokenizer: BPETokenizer
    public let chatFormat: ChatFormat
    public let defaultSystemPrompt: String?
    /// The weights (Float32), with the adapter merged in when one was given; PilotModel's
    /// `decoder()` runs them.
    public let weights: LlamaWeights
    /// Source dtypes of the weights as stored in this directory (F32 after an import).
    public let storedDTypes: [String: Int]
    /// The PEFT LoRA adapter directory merged into the weights, and its config; nil without one.
    public let adapterDirectory: String?
    public let adapterConfig: PEFTAdapterConfig?

    /// Loads `directory`. `adapter`, a PEFT LoRA adapter directory (peft's save_pretrained or PEFTExport),
    /// is merged into the weights for inference; it is read and checked before the weights are.
    /// Everything but the weights' values is read and checked first (`ModelDirectory`), so a directory whose
    /// files disagree is refused before any weight is allocated.
    /// - Parameter dtype: the matrices' dtype (an adapter is merged in f32 first, then the result encoded).
    public init(directory: String, chatFormat override: ChatFormat? = nil, adapter: String? = nil, dtype: BaseDType = .f32) throws {
        self.directory = directory
        let checked = try ModelDirectory(directory: directory, chatFormat: override)
        manifest = checked.manifest
        config = checked.config
        tokenizer = checked.tokenizer
        let lora = try adapter.map { try PEFTAdapter.read(directory: $0) }
        adapterDirectory = adapter
        adapterConfig = try adapter.map { try PEFTAdapter.readConfig(directory: $0) }
        chatFormat = checked.chat.format
        defaultSystemPrompt = checked.chat.defaultSystem
        storedDTypes = checked.storedDTypes
        if let lora, let adapter { try lora.check(against: config, model: directory, adapterDirectory: adapter) }
        try checked.check(dtype: dtype, key: "--base-dtype")
        if let lora, let adapter {
            let loaded = try LlamaWeights(config: config, source: checked.checkpoint)
            try loaded.merge(lora, model: directory, adapterDirectory: adapter)
            self.weights = loaded.converted(to: dtype)
        } else {
            self.weights = try LlamaWeights(config: config, source: checked.checkpoint, dtype: dtype)
        }
    }

    /// The chat format of a model directory and its default system prompt, without loading weights:
    /// `override` first, then pilot-model.json, then the template in tokenizer_config.json.
    public struct ChatLayout: Sendable {
        public let format: ChatFormat
        public let defaultSystem: String?

        public init(directory: String, manifest: ModelManifest? = nil, override: ChatFormat? = nil) throws {
            let manifest = try manifest ?? ModelManifest.read(directory: directory)
            if let f = override {
                format = f
                defaultSystem = f.rawValue == manifest?.chatFormat ? manifest?.defaultSystemPrompt : nil
            } else if let m = manifest, let f = ChatFormat(rawValue: m.chatFormat) {
                format = f
                defaultSystem = m.defaultSystemPrompt
            } else {
                let tc = directory + "/tokenizer_config.json"
                let template = try readSmallFile(tc, limit: smallFileLimit, what: "a tokenizer_config.json")
                    .flatMap { try? JSONSerialization.jsonObject(with: $0) as? [String: Any] }?["chat_template"] as? String
                (format, defaultSystem) = try ChatFormat.detect(chatTemplate: template, file: tc)
            }
        }
    }

    /// Ids that end generation: the chat format's end-of-turn token and the config's EOS ids.
    public var stopIDs: Set<Int32> {
        var s = Set(config.eosTokenIDs.map { Int32($0) })
        if let e = tokenizer.eosID { s.insert(e) }
        if let tag = chatFormat.endOfTurn, let id = tokenizer.id(of: tag) { s.insert(id) }
        return s
    }

    /// Token ids of a chat prompt that opens the assistant turn.
    public func chatPromptIDs(_ messages: [ChatMessage]) -> [Int32] {
        tokenizer.encode(chatFormat.render(messages, defaultSystem: defaultSystemPrompt))
    }

    /// Token ids of raw text: BOS first only when the tokenizer config adds one.
    public func rawIDs(_ text: String) -> [Int32] {
        let ids = tokenizer.encode(text)
        if tokenizer.addsBOS, let b = tokenizer.bosID, ids.first != b { return [b] + ids }
        return ids
    }

    /// Parameter count of the loaded weights (tied embeddings counted once).
    public var parameterCount: Int { LlamaWeights.table(config).reduce(0) { $0 + $1.shape.reduce(1, *) } }
}
