import Foundation
import PilotData
import Testing

@Suite struct ConversationTests {
    let tok = try! Tokenizer.build(from: ["what is it ? a cat . and the colour ? orange . how many ? two"])

    func example(_ followUps: [Exchange], evalTurn: Int = 0, task: FedTask = .vqa) -> Example {
        Example(id: "c1", task: task, imageID: "c1.png", image: RGBImage(width: 4, height: 4), instruction: "what is it?",
                answer: "a cat.", category: "imported", followUps: followUps, evalTurn: evalTurn)
    }

    /// Every answer and its EOS is a target; the human turns are context.
    @Test func everyGptTurnIsATarget() throws {
        let e = example([Exchange(human: "and the colour?", gpt: "orange."), Exchange(human: "how many?", gpt: "two")])
        let enc = try tok.encode(e)
        let words = enc.ids.prefix(enc.length).map { tok.tokens[Int($0)] }
        #expect(words == ["<bos>", "what", "is", "it", "?", "<sep>", "a", "cat", ".", "<eos>", "and", "the", "colour", "?", "<sep>",
                          "orange", ".", "<eos>", "how", "many", "?", "<sep>", "two", "<eos>"])
        let targets = (0..<enc.length).filter { enc.targetMask[$0] > 0 }.map { words[$0] }
        #expect(targets == ["a", "cat", ".", "<eos>", "orange", ".", "<eos>", "two", "<eos>"])
        #expect(enc.promptLength == 6 && !enc.truncated)
        // Scoring the last answer: the prompt ends at the third SEP, earlier exchanges as context.
        let last = try tok.encode(example(e.followUps, evalTurn: 2))
        #expect(last.promptLength == 22 && last.ids[21] == tok.sepID)
    }

    @Test func exchangesThatDoNotFitAreLeftOut() throws {
        let e = example([Exchange(human: "and the colour?", gpt: "orange."), Exchange(human: "how many?", gpt: "two")])
        let enc = try tok.encode(e, layout: SequenceLayout(textLength: 19))
        #expect(enc.truncated && enc.length == 18)   // BOS + two exchanges (9 + 8)
        // For the last turn, the context kept is the one just before it.
        let last = try tok.encode(example(e.followUps, evalTurn: 2), layout: SequenceLayout(textLength: 16))
        #expect(last.truncated && tok.tokens[Int(last.ids[1])] == "and")
    }

    @Test func shardsKeepTurnsEvalTurnsAndCustomTasks() throws {
        let dir = try temporaryDirectory("turns")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let docs = try FedTask(name: "docs", metric: .anls)
        var a = example([Exchange(human: "and the colour?", gpt: "orange.")], evalTurn: 1, task: docs)
        a.references = ["orange."]
        let b = Example(id: "t2", task: docs, imageID: "", image: RGBImage(width: 4, height: 4, fill: ImageFit.llavaMean),
                        instruction: "say hi", answer: "hi", category: "imported")
        let s = Shard(metadata: ShardMetadata(split: "test", task: "docs", source: "test"), examples: [a, b])
        try s.write(to: dir + "/s.h5")
        let back = try Shard.read(path: dir + "/s.h5")
        #expect(back.examples == [a, b])
        #expect(back.examples[0].task.metric == .anls && back.examples[1].isTextOnly)
    }

    @Test func generatedShardsHaveNoNewDatasets() throws {
        let dir = try temporaryDirectory("plain")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let s = Shard(metadata: ShardMetadata(split: "test", task: "vqa", source: "t"), examples: [example([])])
        try s.write(to: dir + "/p.h5")
        let back = try Shard.read(path: dir + "/p.h5")
        #expect(back.examples[0].followUps.isEmpty && back.examples[0].evalTurn == 0)
    }
}
