import ArgumentParser
import Foundation
import PilotCore
import PilotLM
import PilotModel
import PilotTensor

struct ModelLogitsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "logits",
        abstract: "Write the last position's logits of a text as JSON.",
        discussion: """
        The text is tokenized as it is: no chat format, and no BOS unless the tokenizer config adds \
        one. The output is {"ids": [...], "logits": [...]} with one logit per vocabulary entry, for \
        comparing with transformers (scripts/ and docs/models.md show how).
        """
    )

    @OptionGroup var lm: LMOptions

    @Option(help: "The text.")
    var text: String

    @Option(help: "Output JSON file.")
    var out: String

    func run() throws {
        Parallel.configure(threads: lm.threads)
        let model = try PretrainedLM(directory: lm.model, chatFormat: lm.chatFormat.flatMap(ChatFormat.init(rawValue:)), adapter: lm.adapter, dtype: lm.dtype)
        let ids = model.rawIDs(text)
        guard !ids.isEmpty else { throw PilotError.invalidArgument("--text is empty: there is no position to take logits at") }
        let decoder = try model.decoder()
        guard ids.count <= decoder.maxTokens else {
            throw PilotError.invalidArgument("--text has \(ids.count) tokens; `pilot model logits` takes at most \(decoder.maxTokens)")
        }
        let logits = try decoder.forward([ids], cache: decoder.makeCache(batch: 1), logits: .last)
        var json = "{\"ids\": [" + ids.map { String($0) }.joined(separator: ", ") + "], \"logits\": ["
        json += logits.map { "\($0)" }.joined(separator: ", ") + "]}\n"
        try atomicWrite(Data(json.utf8), to: out)
        let top = logits.indices.max { logits[$0] < logits[$1] }!
        print("wrote \(logits.count) logits of position \(ids.count - 1) to \(out); top token \(top) \(model.tokenizer.piece(Int32(top)).debugDescription) at \(logits[top])")
    }
}
