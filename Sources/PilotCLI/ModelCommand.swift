import ArgumentParser
import PilotLM

/// `pilot model`: pretrained language models (import, info, logits). See docs/models.md.
struct ModelCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "model",
        abstract: "Import a pretrained LM (GGUF or Hugging Face) and inspect it.",
        discussion: """
        `pilot model import` turns a GGUF file or a Hugging Face checkpoint directory into a model \
        directory (Hugging Face layout in F32 plus pilot-model.json) that every command takes as \
        --model. scripts/get_smollm2.sh fetches and imports SmolLM2-135M-Instruct. See docs/models.md.
        """,
        subcommands: [ModelImportCommand.self, ModelInfoCommand.self, ModelLogitsCommand.self]
    )
}

/// Options every command that runs a pretrained LM shares.
struct LMOptions: ParsableArguments {
    @Option(help: "Model directory made by `pilot model import` (or any Hugging Face Llama-family directory with F32/F16/BF16 safetensors and tokenizer.json).")
    var model: String

    @Option(help: "Chat layout, overriding the one detected from tokenizer_config.json: chatml, llama3 or plain.")
    var chatFormat: String?

    @Option(help: "Worker threads for OpenBLAS and the engine's own loops.")
    var threads = 1

    @Option(help: "A PEFT LoRA adapter directory (adapter_config.json + adapter_model.safetensors, from peft or `pilot export peft`), merged into the weights.")
    var adapter: String?

    func validate() throws {
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
        if let f = chatFormat, ChatFormat(rawValue: f) == nil {
            throw ValidationError("--chat-format must be chatml, llama3 or plain, not '\(f)'")
        }
    }
}
