import ArgumentParser
import Foundation
import PilotCore
import PilotLM
import PilotTensor

struct ModelImportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Import a GGUF file or a Hugging Face checkpoint directory as a pilot model directory.",
        discussion: """
        SOURCE is a llama-architecture GGUF file (tensor types F32, F16, BF16, Q8_0, Q4_0, Q4_1; the \
        tokenizer comes from its metadata) or a Hugging Face directory with config.json, \
        model.safetensors or sharded model-0000k-of-0000n.safetensors with their index (F32, F16 or \
        BF16), tokenizer.json and tokenizer_config.json. Supported: model_type llama and qwen2 \
        (grouped-query attention, tied or untied embeddings, q/k/v bias); anything else is refused \
        by name before anything is written.

        The output directory is a Hugging Face layout with F32 weights (transformers loads it too) \
        plus pilot-model.json, which records the source and its sha256, the chat format and the \
        sha256 of every file. Running the same import again does nothing.

        Example: pilot model import models/.cache/SmolLM2-135M-Instruct.Q4_1.gguf --out models/smollm2-135m-instruct
        """
    )

    @Argument(help: "GGUF file or Hugging Face checkpoint directory.")
    var source: String

    @Option(help: "Output model directory.")
    var out: String

    @Option(help: "Chat layout when the template is missing or not ChatML/Llama-3: chatml, llama3 or plain.")
    var chatFormat: String?

    @Flag(help: "Replace an existing output directory.")
    var force = false

    @Option(help: "Write the matrices in f32, bf16 or q8 (an int8 tensor and its f16 `_scale` per matrix: GGUF's Q8_0 in two arrays; GGUF Q8_0 tensors are copied, not re-quantized). A 7B model takes 27 GB in f32, 13.5 in bf16, 7.2 in q8. Norms stay f32. Train on it with [model] base_dtype = the same or lower.")
    var dtype = "f32"

    func validate() throws {
        guard BaseDType(rawValue: dtype) != nil else { throw ValidationError("--dtype must be f32, bf16 or q8, not '\(dtype)'") }
        if let f = chatFormat, ChatFormat(rawValue: f) == nil {
            throw ValidationError("--chat-format must be chatml, llama3 or plain, not '\(f)'")
        }
    }

    func run() throws {
        let start = Date()
        let options = ModelImport.Options(chatFormat: chatFormat.flatMap(ChatFormat.init(rawValue:)), force: force,
                                          dtype: BaseDType(rawValue: dtype)!)
        let outcome = try ModelImport.run(source: source, out: out, options: options) { Console.error("pilot model import: \($0)") }
        switch outcome {
        case let .alreadyImported(m):
            print("\(out) already holds this import of \(m.source) (\(m.parameters) parameters, chat format \(m.chatFormat)); nothing to do")
        case let .imported(m):
            print(String(format: "imported %@ into %@: %d parameters, chat format %@, in %.1f s", source, out, m.parameters, m.chatFormat, Date().timeIntervalSince(start)))
        }
    }
}
