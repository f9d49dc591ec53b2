import Foundation
import PilotCore

/// One turn of a conversation.
public struct ChatMessage: Sendable, Equatable {
    public enum Role: String, Sendable { case system, user, assistant }
    public let role: Role
    public let content: String
    public init(_ role: Role, _ content: String) { self.role = role; self.content = content }
}

/// The chat layouts we render without a Jinja engine. A model's `tokenizer_config.json` carries its
/// `chat_template`; `ChatFormat.detect` recognises the two families below by their tags and refuses the
/// rest, so a prompt is never laid out in a format the model was not trained on.
///
/// - `chatml` (SmolLM2, Qwen2): `<|im_start|>role\ncontent<|im_end|>\n` per turn, then
///   `<|im_start|>assistant\n`. End of turn: `<|im_end|>`.
/// - `llama3`: `<|begin_of_text|><|start_header_id|>role<|end_header_id|>\n\ncontent<|eot_id|>` per turn,
///   then `<|start_header_id|>assistant<|end_header_id|>\n\n`. End of turn: `<|eot_id|>`.
/// - `plain`: the turns' contents joined by newlines, no tags (for base models without a template).
public enum ChatFormat: String, Sendable, CaseIterable {
    case chatml, llama3, plain

    /// The token that ends an assistant turn (generation stops there), or nil for `plain`.
    public var endOfTurn: String? {
        switch self {
        case .chatml: return "<|im_end|>"
        case .llama3: return "<|eot_id|>"
        case .plain: return nil
        }
    }

    /// Renders `messages`; with `addGenerationPrompt`, opens the assistant turn for the model to fill.
    /// `defaultSystem` is inserted first when the conversation has no system turn (as the template does).
    public func render(_ messages: [ChatMessage], defaultSystem: String?, addGenerationPrompt: Bool = true) -> String {
        var turns = messages
        if let sys = defaultSystem, turns.first?.role != .system { turns.insert(ChatMessage(.system, sys), at: 0) }
        var out = ""
        switch self {
        case .chatml:
            for m in turns { out += "<|im_start|>\(m.role.rawValue)\n\(m.content)<|im_end|>\n" }
            if addGenerationPrompt { out += "<|im_start|>assistant\n" }
        case .llama3:
            out = "<|begin_of_text|>"
            for m in turns { out += "<|start_header_id|>\(m.role.rawValue)<|end_header_id|>\n\n\(m.content)<|eot_id|>" }
            if addGenerationPrompt { out += "<|start_header_id|>assistant<|end_header_id|>\n\n" }
        case .plain:
            out = turns.map(\.content).joined(separator: "\n")
            if addGenerationPrompt, !out.isEmpty { out += "\n" }
        }
        return out
    }

    /// The format and default system prompt of a `chat_template`. Throws, naming `--chat-format`,
    /// when the template is missing or is neither ChatML nor Llama-3.
    public static func detect(chatTemplate: String?, file: String) throws -> (format: ChatFormat, defaultSystem: String?) {
        guard let t = chatTemplate, !t.isEmpty else {
            throw PilotError.invalidArgument("\(file) has no chat_template, so the chat layout is unknown; pass --chat-format chatml|llama3|plain (plain: no tags, for base models)")
        }
        if t.contains("<|im_start|>") && t.contains("<|im_end|>") {
            return (.chatml, defaultSystemPrompt(in: t, open: "<|im_start|>system\n", close: "<|im_end|>"))
        }
        if t.contains("<|start_header_id|>") && t.contains("<|eot_id|>") {
            return (.llama3, defaultSystemPrompt(in: t, open: "<|start_header_id|>system<|end_header_id|>\n\n", close: "<|eot_id|>"))
        }
        throw PilotError.invalidArgument("the chat_template in \(file) is neither ChatML (<|im_start|>) nor Llama-3 (<|start_header_id|>), and pilot renders no other template; pass --chat-format chatml|llama3|plain to choose one")
    }

    /// A literal system turn written into the template (`'<|im_start|>system\nYou are …<|im_end|>'`),
    /// which the template inserts when the conversation has none. Templates that build the system turn
    /// from variables (dates, tools) have no literal one, and nil is returned.
    static func defaultSystemPrompt(in template: String, open: String, close: String) -> String? {
        // Jinja string literals hold "\n" either as a real newline or as the two characters \ n.
        for opener in [open, open.replacingOccurrences(of: "\n", with: "\\n")] {
            guard let start = template.range(of: opener) else { continue }
            guard let end = template.range(of: close, range: start.upperBound..<template.endIndex) else { continue }
            let body = String(template[start.upperBound..<end.lowerBound])
            if body.contains("{{") || body.contains("{%") || body.contains("'") || body.contains("\"") || body.contains("+") { return nil }
            let text = body.replacingOccurrences(of: "\\n", with: "\n")
            return text.isEmpty ? nil : text
        }
        return nil
    }
}
