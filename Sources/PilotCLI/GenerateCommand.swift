import ArgumentParser
import Foundation
import PilotCore
import PilotLM
import PilotModel
import PilotTensor

struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Answer a prompt with a pretrained LM.",
        discussion: """
        The prompt is laid out in the model's chat format (user turn, after the template's default \
        system prompt unless --system is given) and the answer is generated until the end-of-turn \
        token or --max-new-tokens. --raw continues the text as it is, with no chat tags. Greedy by \
        default; --temperature T (with --top-p P and --seed S) samples reproducibly.

        Example: pilot generate --model models/smollm2-135m-instruct --prompt "What is the capital of France?"
        With a client's LoRA from a federated run (`pilot export peft`): \
        pilot generate --model models/smollm2-135m-instruct --adapter exports/client-0 --prompt "…"
        """
    )

    @OptionGroup var lm: LMOptions

    @Option(help: "The user's message (or, with --raw, the text to continue).")
    var prompt: String

    @Option(help: "System prompt; replaces the chat template's default one.")
    var system: String?

    @Option(help: "Stop after this many new tokens.")
    var maxNewTokens = 128

    @Flag(help: "No chat format: continue the prompt text as it is.")
    var raw = false

    @Option(help: "Sampling temperature; 0 (default) is greedy decoding.")
    var temperature: Float = 0

    @Option(help: "Nucleus sampling: keep the smallest set of tokens whose probability reaches P (with --temperature).")
    var topP: Float = 1

    @Option(help: "Seed of the sampler (with --temperature).")
    var seed: UInt64 = 0

    @Flag(help: "Print the prompt's token count, the stop reason and tokens/s on stderr.")
    var verbose = false

    func validate() throws {
        guard maxNewTokens >= 1 else { throw ValidationError("--max-new-tokens must be at least 1") }
        guard temperature >= 0, temperature.isFinite else { throw ValidationError("--temperature must be 0 (greedy) or positive") }
        guard topP > 0, topP <= 1 else { throw ValidationError("--top-p must be in (0, 1]") }
        if raw && system != nil { throw ValidationError("--system has no effect with --raw (no chat format); drop one of them") }
    }

    func run() throws {
        Parallel.configure(threads: lm.threads)
        let model = try PretrainedLM(directory: lm.model, chatFormat: lm.chatFormat.flatMap(ChatFormat.init(rawValue:)), adapter: lm.adapter, dtype: lm.dtype)
        var messages: [ChatMessage] = []
        if let s = system { messages.append(ChatMessage(.system, s)) }
        messages.append(ChatMessage(.user, prompt))
        let ids = raw ? model.rawIDs(prompt) : model.chatPromptIDs(messages)
        let generator = Generator(model: try model.decoder())
        let sampling: Sampling = temperature == 0 ? .greedy : .temperature(temperature, topP: topP, seed: seed)
        let start = Date()
        let out = try generator.generate(promptIDs: ids, maxNewTokens: maxNewTokens, stopIDs: raw ? [] : model.stopIDs, sampling: sampling)
        let seconds = Date().timeIntervalSince(start)
        print(model.tokenizer.decode(out, skipSpecial: true))
        if verbose {
            Console.error(String(format: "pilot generate: %d prompt tokens, %d new tokens in %.2f s (%.1f tokens/s); stopped: %@",
                                 ids.count, out.count, seconds, Double(out.count) / max(seconds, 1e-9), "\(generator.stopReason)"))
        }
    }
}
