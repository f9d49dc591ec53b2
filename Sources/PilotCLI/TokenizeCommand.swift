import ArgumentParser
import Foundation
import PilotCore
import PilotLM

struct TokenizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenize",
        abstract: "Print the token ids and pieces of a text under a model's tokenizer.",
        discussion: """
        Prints two lines: the ids as a JSON list, then the pieces as a JSON list of strings (byte-level \
        pieces as the vocabulary stores them, e.g. "Ġcapital" for " capital"). Special-token text such \
        as <|im_start|> becomes its id. No BOS is added unless the tokenizer config adds one. \
        --chat lays the text out as a user turn in the chat format first.

        Example: pilot tokenize --model models/smollm2-135m-instruct --text "The capital of France is"
        """
    )

    @Option(help: "Model directory (see `pilot model import`).")
    var model: String

    @Option(help: "The text to tokenize.")
    var text: String

    @Flag(help: "Tokenize the text as a chat prompt (user turn in the model's chat format).")
    var chat = false

    func run() throws {
        let tok = try BPETokenizer(tokenizerJSON: model + "/tokenizer.json")
        var ids: [Int32]
        if chat {
            let lm = try PretrainedLM.ChatLayout(directory: model)
            ids = tok.encode(lm.format.render([ChatMessage(.user, text)], defaultSystem: lm.defaultSystem))
        } else {
            ids = tok.encode(text)
            if tok.addsBOS, let b = tok.bosID { ids.insert(b, at: 0) }
        }
        let pieces = ids.map { tok.piece($0) }
        let idData = try JSONSerialization.data(withJSONObject: ids.map { Int($0) })
        let pieceData = try JSONSerialization.data(withJSONObject: pieces, options: [.withoutEscapingSlashes])
        print(String(decoding: idData, as: UTF8.self))
        print(String(decoding: pieceData, as: UTF8.self))
    }
}
