import Foundation
import PilotCore
import PilotData
import PilotLM
import PilotModel

/// An imported LM's own tokenizer and chat template, with the image inside the first user turn, as
/// LLaVA lays out a conversation. For SmolLM2 (ChatML, default system prompt):
///
///     <|im_start|>system\nYou are a helpful AI assistant named SmolLM, …<|im_end|>\n<|im_start|>user\n
///     [P visual tokens]
///     \n{instruction}<|im_end|>\n<|im_start|>assistant\n{answer}<|im_end|>
///     \n<|im_start|>user\n{instruction 2}<|im_end|>\n<|im_start|>assistant\n{answer 2}<|im_end|> …
///
/// The loss covers each answer's tokens and its end-of-turn token, nothing else (the template, the
/// system turn and the user turns are context). The template pieces come from `ChatFormat.render` (the
/// same text `pilot generate` and Hugging Face's `apply_chat_template` produce), tokenized piece by
/// piece; every piece boundary is at a special token or a newline, where the byte-level pre-tokenizer
/// splits anyway, so the ids equal those of the whole rendered text (tested).
public struct ChatCodec: ExampleCodec {
    public let tokenizer: BPETokenizer
    public let format: ChatFormat
    public let defaultSystem: String?
    /// System turn and the opening of the user turn: the text before the visual tokens.
    public let prefix: [Int32]
    /// After the image, before the first instruction.
    let imageSeparator: [Int32]
    /// End of a user turn and opening of the assistant turn (the end of every prompt).
    let userToAssistant: [Int32]
    /// The token that ends an answer (a target).
    public let endOfTurn: Int32
    /// After the end-of-turn token, before the next user turn's content.
    let assistantToUser: [Int32]

    public init(tokenizer: BPETokenizer, format: ChatFormat, defaultSystem: String?, model: String = "the model") throws {
        self.tokenizer = tokenizer; self.format = format; self.defaultSystem = defaultSystem
        // Render a conversation with sentinel contents and cut the template text at them.
        let a = "\u{E000}", b = "\u{E001}", c = "\u{E002}"
        let text = format.render([ChatMessage(.user, a), ChatMessage(.assistant, b), ChatMessage(.user, c)],
                                 defaultSystem: defaultSystem, addGenerationPrompt: true)
        let parts = text.components(separatedBy: a).flatMap { $0.components(separatedBy: b) }.flatMap { $0.components(separatedBy: c) }
        guard parts.count == 4, parts[1] == parts[3] else {
            throw PilotError.invalidArgument("\(model): the \(format.rawValue) chat template does not render a user/assistant exchange the way the training layout needs")
        }
        prefix = tokenizer.encode(parts[0])
        userToAssistant = tokenizer.encode(parts[1])
        imageSeparator = tokenizer.encode("\n")
        var between = parts[2]
        if let tag = format.endOfTurn {
            guard between.hasPrefix(tag), let id = tokenizer.id(of: tag) else {
                throw PilotError.invalidArgument("\(model): the tokenizer has no end-of-turn token \(tag) for its \(format.rawValue) chat format")
            }
            endOfTurn = id
            between.removeFirst(tag.count)
        } else {
            guard let eos = tokenizer.eosID else {
                throw PilotError.invalidArgument("\(model): plain chat format and no EOS token, so an answer has no end; import the model with its tokenizer_config.json")
            }
            endOfTurn = eos
        }
        assistantToUser = tokenizer.encode(between)
    }

    /// The codec of an imported LM (its tokenizer, chat format and default system prompt).
    public init(base: PretrainedBase) throws {
        try self.init(tokenizer: base.tokenizer, format: base.chat.format, defaultSystem: base.chat.defaultSystem, model: base.directory)
    }

    public var vocabularySize: Int { tokenizer.vocabularySize }
    public var visualPosition: Int { prefix.count }
    public var stopToken: Int32 { endOfTurn }
    public var minimumTextLength: Int { prefix.count + imageSeparator.count + userToAssistant.count + 3 }
    public var summary: String {
        "\(format.rawValue) chat layout over the LM's tokenizer (\(tokenizer.vocabularySize) tokens), image in the user turn after \(prefix.count) template tokens"
    }

    public func encode(_ example: Example, textLength L: Int, truncate: Bool) throws -> EncodedExample {
        guard L >= minimumTextLength else {
            throw PilotError.invalidArgument("a text length of \(L) tokens is too short for the \(format.rawValue) chat template (system turn and tags alone take \(minimumTextLength - 3)); use a text length of at least \(minimumTextLength + 32)")
        }
        let exchanges = example.exchanges
        let k = max(0, min(example.evalTurn, exchanges.count - 1))
        // Per exchange: the context before its answer, and its answer (the end-of-turn token follows).
        func context(_ i: Int, first: Bool) -> [Int32] {
            (first ? tokenizer.encode("\n" + exchanges[i].human) : assistantToUser + tokenizer.encode(exchanges[i].human)) + userToAssistant
        }
        let answers = exchanges.map { tokenizer.encode($0.gpt) }
        let budget = L - prefix.count
        var first = k, last = k
        var ctx = [context(k, first: true)]
        var used = ctx[0].count + answers[k].count + 1
        var truncated = false
        if used > budget {
            guard truncate else {
                throw PilotError.invalidArgument("example '\(example.id)'\(k > 0 ? " (exchange \(k + 1))" : ""): \(used) tokens of instruction, answer and chat tags exceed the \(budget) text tokens the layout leaves after the system turn; raise the text length or allow truncation")
            }
            // Keep the end of the instruction (the question) and as much of the answer as fits.
            let ins = tokenizer.encode("\n" + exchanges[k].human)
            let room = budget - userToAssistant.count - 1
            let keepAnswer = min(answers[k].count, room - min(ins.count, room / 2))
            let keptIns = Array(ins.suffix(room - keepAnswer))
            let e = layout([keptIns + userToAssistant], [Array(answers[k].prefix(keepAnswer))], evalIndex: 0, textLength: L)
            return EncodedExample(ids: e.ids, targetMask: e.mask, promptLength: e.prompt, length: e.length, unknownCount: 0, truncated: true)
        }
        // The exchanges before k are its context; then the ones after it, while they fit.
        while first > 0 {
            let c = context(first - 1, first: true), next = context(first, first: false)
            let extra = c.count + answers[first - 1].count + 1 + next.count - ctx[0].count
            guard used + extra <= budget else { truncated = true; break }
            ctx[0] = next; ctx.insert(c, at: 0); used += extra; first -= 1
        }
        while last + 1 < exchanges.count {
            let c = context(last + 1, first: false)
            let extra = c.count + answers[last + 1].count + 1
            guard used + extra <= budget else { truncated = true; break }
            ctx.append(c); used += extra; last += 1
        }
        let e = layout(ctx, Array(answers[first...last]), evalIndex: k - first, textLength: L)
        return EncodedExample(ids: e.ids, targetMask: e.mask, promptLength: e.prompt, length: e.length, unknownCount: 0, truncated: truncated)
    }

    /// prefix, then per exchange its context and its answer + end of turn (targets), padded to L.
    private func layout(_ contexts: [[Int32]], _ answers: [[Int32]], evalIndex: Int, textLength L: Int)
        -> (ids: [Int32], mask: [Float], prompt: Int, length: Int) {
        var ids = prefix
        var mask = [Float](repeating: 0, count: prefix.count)
        var prompt = 0
        for (i, c) in contexts.enumerated() {
            ids += c; mask += [Float](repeating: 0, count: c.count)
            if i == evalIndex { prompt = ids.count }
            ids += answers[i]; ids.append(endOfTurn)
            mask += [Float](repeating: 1, count: answers[i].count + 1)
        }
        let length = ids.count
        let pad = tokenizer.padID ?? endOfTurn
        ids += [Int32](repeating: pad, count: L - length)
        mask += [Float](repeating: 0, count: L - length)
        return (ids, mask, prompt, length)
    }

    public func decodeAnswer(_ ids: [Int32]) -> String {
        tokenizer.decode(Array(ids.prefix { $0 != endOfTurn }), skipSpecial: true).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
