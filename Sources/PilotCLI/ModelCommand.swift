import ArgumentParser
import PilotLM
import PilotTensor

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

    @Option(help: "The frozen matrices in f32, bf16 or q8 (GGUF's Q8_0: blocks of 32 int8 with an f16 scale); docs/models.md \"Base dtypes\".")
    var baseDtype = "f32"

    /// `--base-dtype` as a dtype (validated).
    var dtype: BaseDType { BaseDType(rawValue: baseDtype)! }

    func validate() throws {
        guard BaseDType(rawValue: baseDtype) != nil else {
            throw ValidationError("--base-dtype must be f32, bf16 or q8, not '\(baseDtype)'")
        }
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
        if let f = chatFormat, ChatFormat(rawValue: f) == nil {
            throw ValidationError("--chat-format must be chatml, llama3 or plain, not '\(f)'")
        }
    }
}
