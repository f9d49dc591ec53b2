import Foundation
import PilotData
import Testing

@Suite struct TokenizerTests {
    @Test func piecesSplitWordsNumbersBoxesAndPunctuation() {
        #expect(Tokenizer.pieces("<image>\nWhat color is the circle?") == ["<image>", "what", "color", "is", "the", "circle", "?"])
        #expect(Tokenizer.pieces("[0.12,0.40,0.31,0.62]") == ["[", "0.12", ",", "0.40", ",", "0.31", ",", "0.62", "]"])
        #expect(Tokenizer.pieces("there are 2. a. hot b. cold") == ["there", "are", "2", ".", "a", ".", "hot", "b", ".", "cold"])
        #expect(Tokenizer.pieces("it's 10%") == ["it", "'", "s", "10", "%"])
    }

    @Test func vocabularyIsDeterministicAndOrdered() throws {
        let texts = ["b a c", "a b", "a", "zeta"]
        let t1 = try Tokenizer.build(from: texts), t2 = try Tokenizer.build(from: texts.reversed())
        #expect(t1 == t2)
        #expect(Array(t1.tokens.prefix(6)) == ["<pad>", "<unk>", "<bos>", "<eos>", "<sep>", "<image>"])
        let fixed = Tokenizer.specials.count + Tokenizer.closedSet.count
        #expect(Array(t1.tokens[fixed...]) == ["a", "b", "c", "zeta"])  // by count, then byte order
        #expect(t1.id(of: "0.00") != nil && t1.id(of: "1.00") != nil && t1.id(of: "100") != nil)
        #expect(throws: (any Error).self) { try Tokenizer.build(from: texts, maxSize: 100) }
        let capped = try Tokenizer.build(from: texts, maxSize: fixed + 2)
        #expect(capped.count == fixed + 2 && capped.id(of: "c") == nil)
    }

    @Test func encodeDecodeAndUnknownWords() throws {
        let tok = try Tokenizer.build(from: ["find the red circle", "[0.12,0.40,0.31,0.62]"])
        let box = "[0.12,0.40,0.31,0.62]"
        #expect(tok.decode(tok.encode(box)) == box)
        #expect(tok.decode(tok.encode("find the red circle.")) == "find the red circle.")
        var unknown = 0
        let ids = tok.encode("find the purple circle", unknownCount: &unknown)
        #expect(unknown == 1 && ids[2] == tok.unkID)
        #expect(tok.decode(ids) == "find the <unk> circle")
    }

    @Test func sequenceLayoutAndTargetMask() throws {
        let tok = try Tokenizer.build(from: ["what color is the circle ? red"])
        let e = try tok.encode(instruction: "what color is the circle?", answer: "red")
        // [BOS] what color is the circle ? [SEP] red [EOS] PAD…
        #expect(e.ids.count == 48 && e.length == 10 && e.promptLength == 8)
        #expect(e.ids[0] == tok.bosID && e.ids[7] == tok.sepID && e.ids[8] == tok.id(of: "red") && e.ids[9] == tok.eosID)
        #expect(e.ids[10...].allSatisfy { $0 == tok.padID })
        #expect(e.targetMask[8] == 1 && e.targetMask[9] == 1 && e.targetMask.reduce(0, +) == 2)
        #expect(tok.decodeAnswer(Array(e.ids[e.promptLength...])) == "red")
        #expect(tok.encodePrompt("what color is the circle?") == Array(e.ids[0..<8]))
        let long = Array(repeating: "red", count: 50).joined(separator: " ")
        #expect(throws: (any Error).self) { try tok.encode(instruction: long, answer: "red") }
        let cut = try tok.encode(instruction: long, answer: "circle", layout: SequenceLayout(truncate: true))
        #expect(cut.truncated && cut.length == 48 && cut.ids[46] == tok.id(of: "circle") && cut.targetMask.reduce(0, +) == 2)
    }

    @Test func savesAndLoadsThroughHDF5() throws {
        let dir = try temporaryDirectory("tok")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let tok = try Tokenizer.build(from: ["a b c", "ünïcode wörds"])
        try tok.save(path: dir + "/t.h5")
        #expect(try Tokenizer.load(path: dir + "/t.h5") == tok)
    }
}
