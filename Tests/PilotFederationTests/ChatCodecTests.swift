import Foundation
import PilotCore
import PilotData
import PilotFederation
import PilotLM
import PilotModel
import PilotTestSupport
import Testing

/// The imported SmolLM2-135M-Instruct directory (PILOT_SMOLLM2 overrides), or nil when it was not fetched.
let smolLM2Directory: String? = {
    let p = ProcessInfo.processInfo.environment["PILOT_SMOLLM2"] ?? (repositoryRoot + "/models/smollm2-135m-instruct")
    return FileManager.default.fileExists(atPath: p + "/tokenizer.json") ? p : nil
}()

/// The chat layout of examples over SmolLM2's own tokenizer and template (the model directory that
/// scripts/get_smollm2.sh imports; PILOT_SMOLLM2 overrides), checked against the prompt ids that
/// transformers' apply_chat_template gave (Tests/Fixtures/lm/smollm2_reference.json).
@Suite("Chat layout over an imported LM's tokenizer", .enabled(if: smolLM2Directory != nil))
struct ChatCodecTests {
    static var smollm2: String? { smolLM2Directory }

    static func codec() throws -> ChatCodec {
        let dir = smollm2!
        let layout = try PretrainedLM.ChatLayout(directory: dir)
        return try ChatCodec(tokenizer: try BPETokenizer(tokenizerJSON: dir + "/tokenizer.json"), format: layout.format,
                             defaultSystem: layout.defaultSystem, model: dir)
    }

    static func example(_ exchanges: [(String, String)], evalTurn: Int = 0, id: String = "ex-1") -> Example {
        Example(id: id, task: .vqa, image: RGBImage(width: 4, height: 4), instruction: exchanges[0].0, answer: exchanges[0].1, category: "test",
                followUps: exchanges.dropFirst().map { Exchange(human: $0.0, gpt: $0.1) }, evalTurn: evalTurn)
    }

    static func hfPrompt(_ question: String) throws -> [Int32] {
        let data = try Data(contentsOf: URL(fileURLWithPath: repositoryRoot + "/Tests/Fixtures/lm/smollm2_reference.json"))
        let j = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let chat = try #require(j["chat"] as? [[String: Any]])
        let entry = try #require(chat.first { $0["question"] as? String == question })
        return try #require(entry["prompt_ids"] as? [Int]).map(Int32.init)
    }

    @Test func promptIsTransformersTemplateWithTheImageAfterTheUserTag() throws {
        let codec = try Self.codec()
        let q = "What is the capital of France?"
        let hf = try Self.hfPrompt(q)
        let e = try codec.encode(Self.example([(q, "Paris")]), textLength: 96, truncate: false)
        let prompt = Array(e.ids.prefix(e.promptLength))
        // transformers: system turn, "<|im_start|>user\n", question, "<|im_end|>\n<|im_start|>assistant\n".
        // Ours: the same, with the visual tokens after the user tag and a newline before the question.
        #expect(Array(hf.prefix(codec.visualPosition)) == Array(prompt.prefix(codec.visualPosition)))
        #expect(codec.tokenizer.decode(Array(hf.prefix(codec.visualPosition)), skipSpecial: false).hasSuffix("<|im_start|>user\n"))
        let tail = hf.count - codec.visualPosition - codec.tokenizer.encode(q).count
        #expect(tail > 0 && Array(hf.suffix(tail)) == Array(prompt.suffix(tail)))
        #expect(Array(prompt[codec.visualPosition..<(prompt.count - tail)]) == codec.tokenizer.encode("\n" + q))
        // the pieces tokenize as the whole rendered text does
        let text = codec.format.render([ChatMessage(.user, "\n" + q), ChatMessage(.assistant, "Paris")],
                                       defaultSystem: codec.defaultSystem, addGenerationPrompt: false)
        let whole = codec.tokenizer.encode(text)
        #expect(Array(e.ids.prefix(e.length)) == Array(whole.prefix(e.length)))
        // the loss covers the answer and the end of turn, nothing else
        let targets = (0..<e.ids.count).filter { e.targetMask[$0] > 0 }
        #expect(targets == Array(e.promptLength..<e.length))
        #expect(e.ids[e.length - 1] == codec.stopToken && codec.tokenizer.piece(codec.stopToken) == "<|im_end|>")
        #expect(codec.decodeAnswer(Array(e.ids[e.promptLength...])) == "Paris")
        #expect(!e.truncated)
    }

    @Test func everyAnswerOfAConversationIsATargetAndEvalTurnSetsThePrompt() throws {
        let codec = try Self.codec()
        let ex = Self.example([("What colour is the square?", "Red."), ("And the circle?", "Blue."), ("How many shapes?", "Two.")], evalTurn: 1)
        let e = try codec.encode(ex, textLength: 128, truncate: false)
        var spans: [[Int32]] = []
        var cur: [Int32] = []
        for j in 0..<e.length {
            if e.targetMask[j] > 0 { cur.append(e.ids[j]) } else if !cur.isEmpty { spans.append(cur); cur = [] }
        }
        if !cur.isEmpty { spans.append(cur) }
        #expect(spans.map { codec.decodeAnswer($0) } == ["Red.", "Blue.", "Two."])
        #expect(codec.decodeAnswer(Array(e.ids[e.promptLength...])) == "Blue.")
        let promptText = codec.tokenizer.decode(Array(e.ids.prefix(e.promptLength)), skipSpecial: false)
        #expect(promptText.hasSuffix("And the circle?<|im_end|>\n<|im_start|>assistant\n") && promptText.contains("Red.<|im_end|>"))
    }

    @Test func aLongConversationIsCutAroundTheEvalTurnAndCounted() throws {
        let codec = try Self.codec()
        let long = String(repeating: "Describe the picture in great detail please. ", count: 3)
        let ex = Self.example([(long, "A red square."), (long, "A blue circle."), ("How many shapes?", "Two.")], evalTurn: 2)
        let minimum = codec.minimumTextLength
        let L = minimum + 40
        let e = try codec.encode(ex, textLength: L, truncate: true)
        #expect(e.truncated && e.ids.count == L && e.length <= L)
        #expect(codec.decodeAnswer(Array(e.ids[e.promptLength...])) == "Two.")
        #expect(codec.tokenizer.decode(Array(e.ids.prefix(e.promptLength)), skipSpecial: false).contains("How many shapes?"))
        // without truncation it names the example; below the template's minimum it says so
        do { _ = try codec.encode(Self.example([(long + long + long, "Yes.")], id: "too-long"), textLength: L, truncate: false); Issue.record("no error") } catch {
            #expect("\(error)".contains("too-long"))
        }
        do { _ = try codec.encode(ex, textLength: minimum - 1, truncate: true); Issue.record("no error") } catch {
            #expect("\(error)".contains("too short"))
        }
        // one exchange too long for the layout keeps the question's end and the answer's start
        let one = try codec.encode(Self.example([(long + long + long + " How many?", "Two.")]), textLength: L, truncate: true)
        #expect(one.truncated && codec.decodeAnswer(Array(one.ids[one.promptLength...])) == "Two.")
        #expect(codec.tokenizer.decode(Array(one.ids.prefix(one.promptLength)), skipSpecial: true).contains("How many?"))
    }

    @Test func batchesPutTargetsAfterTheVisualBlock() throws {
        let codec = try Self.codec()
        var c = ModelConfig.tiny
        c.imageSize = 4; c.patchSize = 2; c.vocabSize = codec.vocabularySize
        c.visualPosition = codec.visualPosition
        c.contextLength = c.visualTokens + 80
        let ex = Self.example([("What is it?", "A cat.")])
        let prepared = try Batcher(config: c, codec: codec).prepare([ex])
        let batch = try prepared.batch(0..<1)
        let e = try codec.encode(ex, textLength: c.textLength, truncate: false)
        let P = c.visualTokens
        // the output at sequence position s predicts the token at s + 1; text token j sits at j (before the image) or j + P
        let expected = (0..<c.contextLength).map { s -> Int32 in
            let j = s + 1 >= codec.visualPosition + P ? s + 1 - P : (s + 1 < codec.visualPosition ? s + 1 : -1)
            return j >= 1 && j < e.ids.count && e.targetMask[j] > 0 ? e.ids[j] : -1
        }
        #expect(batch.targets == expected)
        #expect(batch.targets.filter { $0 >= 0 }.count == prepared.targetCounts[0])
        var wrong = c; wrong.visualPosition = nil
        #expect(throws: PilotError.self) { _ = try Batcher(config: wrong, codec: codec) }
    }
}
