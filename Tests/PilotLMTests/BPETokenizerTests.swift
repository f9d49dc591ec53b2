import Foundation
import PilotTestSupport
import PilotCore
import Testing
@testable import PilotLM

/// BPETokenizer against Hugging Face `tokenizers` on SmolLM2's tokenizer.json: the committed fixture
/// (Tests/Fixtures/lm/make_tokenizer_fixture.py) holds 10,500 strings and the ids `tokenizers` 0.23 gave them.
@Suite struct BPETokenizerTests {
    struct Fixture {
        var strings: [String]
        var ids: [[Int32]]
        var decodes: [(ids: [Int32], text: String, skipSpecial: Bool)]
        var splits: [String: [(text: String, ends: [Int])]]
    }

    static let fixture: Fixture? = {
        guard let data = FileManager.default.contents(atPath: LMFixtures.path("tokenizer_smollm2.json")),
              let root = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any],
              let strings = root["strings"] as? [String], let ids = root["ids"] as? [[Int]],
              let decodes = root["decodes"] as? [[String: Any]], let splits = root["splits"] as? [String: [[String: Any]]]
        else { return nil }
        return Fixture(strings: strings, ids: ids.map { $0.map(Int32.init) },
                       decodes: decodes.map { (($0["ids"] as? [Int] ?? []).map(Int32.init), $0["text"] as? String ?? "", $0["skip_special"] as? Bool ?? false) },
                       splits: splits.mapValues { $0.map { ($0["text"] as? String ?? "", $0["ends"] as? [Int] ?? []) } })
    }()

    static let smolJSON: String? = LMFixtures.smollm2.map { $0 + "/tokenizer.json" }

    static func smol() throws -> BPETokenizer? {
        guard let path = smolJSON else { return nil }
        return try BPETokenizer(tokenizerJSON: path)
    }

    /// Mismatching fixture strings (index, ours, theirs); prints the count and the first few.
    static func mismatches(_ tok: BPETokenizer, _ f: Fixture, label: String) -> Int {
        var bad: [Int] = []
        for (i, s) in f.strings.enumerated() where tok.encode(s) != f.ids[i] { bad.append(i) }
        print("\(label): \(bad.count) of \(f.strings.count) strings encode differently from tokenizers")
        for i in bad.prefix(5) {
            print("  #\(i) \(f.strings[i].debugDescription)\n    ours   \(tok.encode(f.strings[i]))\n    theirs \(f.ids[i])")
        }
        return bad.count
    }

    @Test func fixtureIsThere() throws {
        let f = try #require(Self.fixture, "Tests/Fixtures/lm/tokenizer_smollm2.json is missing or unreadable")
        #expect(f.strings.count >= 10_000 && f.strings.count == f.ids.count)
    }

    @Test(.enabled(if: LMFixtures.smollm2 != nil, "SmolLM2 not fetched (PILOT_SMOLLM2)"))
    func knownIDsFromDesign() throws {
        let tok = try #require(try Self.smol())
        #expect(tok.encode("The capital of France is") == [504, 3575, 282, 4649, 314])
        #expect(tok.encode("<|im_start|>user\nHi<|im_end|>") == [1, 4093, 198, 26843, 2])
        #expect(tok.vocabularySize == 49152)
        #expect(tok.bosID == 1 && tok.eosID == 2 && !tok.addsBOS)
        #expect(tok.piece(504) == "The" && tok.piece(3575) == "Ġcapital")
        #expect(tok.decode([1, 4093, 198, 26843, 2], skipSpecial: true) == "user\nHi")
    }

    @Test(.enabled(if: LMFixtures.smollm2 != nil, "SmolLM2 not fetched (PILOT_SMOLLM2)"))
    func encodesLikeTokenizers() throws {
        let tok = try #require(try Self.smol()), f = try #require(Self.fixture)
        #expect(Self.mismatches(tok, f, label: "tokenizer.json") == 0)
        var bad: [Int] = []
        for (i, s) in f.strings.enumerated() where tok.decode(f.ids[i], skipSpecial: false) != s { bad.append(i) }
        print("decode(encode(s)) != s for \(bad.count) strings", bad.prefix(5).map { f.strings[$0].debugDescription })
        #expect(bad.isEmpty)
    }

    @Test(.enabled(if: LMFixtures.smollm2 != nil, "SmolLM2 not fetched (PILOT_SMOLLM2)"))
    func decodesLikeTokenizers() throws {
        let tok = try #require(try Self.smol()), f = try #require(Self.fixture)
        var bad = 0
        for d in f.decodes where tok.decode(d.ids, skipSpecial: d.skipSpecial) != d.text {
            if bad < 5 { print("decode \(d.ids) skip \(d.skipSpecial): ours \(tok.decode(d.ids, skipSpecial: d.skipSpecial).debugDescription) theirs \(d.text.debugDescription)") }
            bad += 1
        }
        print("\(bad) of \(f.decodes.count) id lists decode differently from tokenizers")
        #expect(bad == 0)
    }

    /// GGUF metadata is what gguf_to_hf.py wrote into tokenizer.json, so rebuilding from its arrays with
    /// pre-tokenizer `smollm` must encode the fixture the same; and tokenizerJSON() must load back the same.
    @Test(.enabled(if: LMFixtures.smollm2 != nil, "SmolLM2 not fetched (PILOT_SMOLLM2)"))
    func ggufMetadataAndWrittenJSON() throws {
        let tok = try #require(try Self.smol()), f = try #require(Self.fixture)
        var types = [Int](repeating: 1, count: tok.vocabularySize)
        for a in tok.addedTokens { types[Int(a.id)] = 3 }
        let gguf = try BPETokenizer(ggufTokens: tok.tokens, merges: tok.merges.map { $0.0 + " " + $0.1 }, tokenTypes: types,
                                    preTokenizer: "smollm", bos: 1, eos: 2, unk: 0, pad: 2, addBOS: false)
        #expect(gguf.preTokenizers == tok.preTokenizers)
        #expect(Self.mismatches(gguf, f, label: "from GGUF arrays") == 0)
        let data = try gguf.tokenizerJSON()
        if let out = ProcessInfo.processInfo.environment["PILOT_WRITE_TOKENIZER_JSON"] {  // for a check with tokenizers itself
            try data.write(to: URL(fileURLWithPath: out))
        }
        let back = try BPETokenizer(tokenizerJSON: data, source: "tokenizerJSON()")
        // the same JSON as gguf_to_hf.py's (key order aside)
        let ours = try JSONSerialization.jsonObject(with: data) as? NSDictionary
        let theirs = try JSONSerialization.jsonObject(with: try Data(contentsOf: URL(fileURLWithPath: try #require(Self.smolJSON)))) as? NSDictionary
        #expect(ours != nil && ours == theirs)
        #expect(back.tokens == tok.tokens && back.addedTokens == tok.addedTokens && back.preTokenizers == tok.preTokenizers)
        #expect(Self.mismatches(back, f, label: "written tokenizer.json") == 0)
        #expect(throws: PilotError.self) {
            try BPETokenizer(ggufTokens: tok.tokens, merges: [], tokenTypes: types, preTokenizer: "deepseek-llm",
                             bos: 1, eos: 2, unk: nil, pad: nil, addBOS: false)
        }
    }

    /// The heap merge used for long words gives the scan merge's result (each fixture string taken as one word).
    @Test(.enabled(if: LMFixtures.smollm2 != nil, "SmolLM2 not fetched (PILOT_SMOLLM2)"))
    func longWordMergeAgreesWithShort() throws {
        let tok = try #require(try Self.smol()), f = try #require(Self.fixture)
        var bad = 0
        for s in f.strings + [String(repeating: "thequickbrownfox", count: 40)] {
            let symbols = tok.byteSymbols(Array(s.utf8))
            if tok.mergeLong(symbols) != tok.mergeShort(symbols) { bad += 1 }
        }
        #expect(bad == 0)
    }

    /// The Llama 3 and Qwen2 Split patterns against `tokenizers`' own Split pre-tokenizer (Oniguruma).
    @Test(arguments: [SplitPattern.llama3, .qwen2])
    func splitPatternsLikeOniguruma(_ pattern: SplitPattern) throws {
        let f = try #require(Self.fixture)
        let cases = try #require(f.splits[pattern == .llama3 ? "llama3" : "qwen2"])
        var bad = 0
        for c in cases {
            var text = PreTokenizedText(scalars: c.text.unicodeScalars.map(\.value))
            text.apply(.split(pattern))
            let ends = text.pieces.map(\.upperBound)
            if ends != c.ends {
                if bad < 5 { print("\(pattern) \(c.text.debugDescription): ours \(ends) theirs \(c.ends)") }
                bad += 1
            }
        }
        print("\(pattern): \(bad) of \(cases.count) strings split differently from tokenizers")
        #expect(bad == 0)
    }

    /// GPT-2 pattern pieces worked out by hand from the regex: `\s+(?!\S)` leaves the last space to the word.
    @Test func gpt2PatternByHand() {
        func pieces(_ s: String) -> [String] {
            var text = PreTokenizedText(scalars: s.unicodeScalars.map(\.value))
            text.apply(.split(.gpt2))
            let sc = Array(s.unicodeScalars)
            return text.pieces.map { r in String(String.UnicodeScalarView(sc[r])) }
        }
        #expect(pieces("Hello   world  ") == ["Hello", "  ", " world", "  "])
        #expect(pieces("don't DON'T 12ab") == ["don", "'t", " DON", "'", "T", " 12", "ab"])
        #expect(pieces("a\n\n b\t(c)") == ["a", "\n\n", " b", "\t", "(", "c", ")"])
    }

    @Test func refusesWhatItDoesNotSupport() throws {
        func load(_ edit: (inout [String: Any]) -> Void) throws {
            var root: [String: Any] = [
                "added_tokens": [], "normalizer": NSNull(), "post_processor": NSNull(),
                "pre_tokenizer": ["type": "ByteLevel", "add_prefix_space": false, "use_regex": true],
                "decoder": ["type": "ByteLevel"],
                "model": ["type": "BPE", "vocab": ["a": 0, "b": 1, "ab": 2], "merges": ["a b"]] as [String: Any],
            ]
            edit(&root)
            _ = try BPETokenizer(tokenizerJSON: try JSONSerialization.data(withJSONObject: root), source: "t.json")
        }
        func message(_ edit: (inout [String: Any]) -> Void) -> String {
            do { try load(edit); return "" } catch { return "\(error)" }
        }
        try load { _ in }
        #expect(message { $0["model"] = ["type": "WordPiece", "vocab": [:]] }.contains("'WordPiece' is not supported; supported: BPE"))
        #expect(message { $0["model"] = ["type": "BPE", "byte_fallback": true, "vocab": [:], "merges": []] }.contains("byte_fallback"))
        #expect(message { $0["normalizer"] = ["type": "NFKC"] }.contains("normalizer 'NFKC'"))
        #expect(message { $0["pre_tokenizer"] = ["type": "Metaspace"] }.contains("'Metaspace' is not supported"))
        #expect(message { $0["pre_tokenizer"] = ["type": "Sequence", "pretokenizers": [["type": "Split", "pattern": ["Regex": "\\w+"], "behavior": "Isolated"], ["type": "ByteLevel"]]] }.contains("\\w+"))
        #expect(message { $0["decoder"] = ["type": "Metaspace"] }.contains("decoder 'Metaspace'"))
        #expect(message { $0["model"] = ["type": "BPE", "vocab": ["a": 0, "b": 1], "merges": ["a b"]] }.contains("'ab'"))
    }

    /// A Llama 3 shaped tokenizer.json (Split + ByteLevel without regex, ignore_merges, BOS by template) on a toy
    /// vocabulary: the structure is read, BOS is reported, and the ids are worked out by hand.
    @Test func readsLlama3Structure() throws {
        let bos = "<|begin_of_text|>"
        let root: [String: Any] = [
            "added_tokens": [["id": 5, "content": bos, "special": true, "normalized": false]],
            "normalizer": NSNull(), "decoder": ["type": "ByteLevel"],
            "pre_tokenizer": ["type": "Sequence", "pretokenizers": [
                ["type": "Split", "pattern": ["Regex": SplitPattern.llama3.rawValue], "behavior": "Isolated", "invert": false],
                ["type": "ByteLevel", "add_prefix_space": false, "use_regex": false]]],
            "post_processor": ["type": "Sequence", "processors": [["type": "ByteLevel"], [
                "type": "TemplateProcessing", "single": [["SpecialToken": ["id": bos, "type_id": 0]], ["Sequence": ["id": "A", "type_id": 0]]],
                "special_tokens": [bos: ["id": bos, "ids": [5], "tokens": [bos]]]]]],
            "model": ["type": "BPE", "ignore_merges": true, "vocab": ["a": 0, "b": 1, "Ġ": 2, "ab": 3, "Ġa": 4, "abab": 6],
                      "merges": [["a", "b"], ["Ġ", "a"]]] as [String: Any],
        ]
        let tok = try BPETokenizer(tokenizerJSON: try JSONSerialization.data(withJSONObject: root), source: "llama3.json")
        #expect(tok.preTokenizers == [.split(.llama3), .byteLevel(addPrefixSpace: false, useRegex: false)])
        #expect(tok.addsBOS && tok.bosID == 5 && tok.ignoreMerges)
        // "abab" is in the vocabulary, so ignore_merges takes it whole (merges alone would give ab ab);
        // " ab" is Ġ a b, and a+b (rank 0) goes before Ġ+a (rank 1): Ġ ab
        #expect(tok.encode("\(bos)abab ab") == [5, 6, 2, 3])
        #expect(tok.decode([5, 6, 2, 3], skipSpecial: true) == "abab ab")
    }

    /// Encode throughput on the fixture strings (printed, not asserted); scripts/bench/bench_tokenizer.py compares it
    /// with `tokenizers` on one thread.
    @Test(.enabled(if: LMFixtures.smollm2 != nil && ProcessInfo.processInfo.environment["PILOT_BENCH_TOKENIZER"] != nil))
    func throughput() throws {
        let tok = try #require(try Self.smol()), f = try #require(Self.fixture)
        let bytes = f.strings.reduce(0) { $0 + $1.utf8.count }
        var count = 0
        for s in f.strings { count += tok.encode(s).count }  // warm the word cache, as tokenizers' own is warm
        let rounds = 5
        let start = DispatchTime.now().uptimeNanoseconds
        for _ in 0..<rounds { for s in f.strings { count += tok.encode(s).count } }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        print(String(format: "BENCH pilot encode: %.3f s for %d rounds of %d strings, %.2f MB/s, %d ids", seconds, rounds,
                     f.strings.count, Double(bytes * rounds) / seconds / 1e6, count))
        let doc = f.strings.joined(separator: "\n")
        _ = tok.encode(doc)
        let t0 = DispatchTime.now().uptimeNanoseconds
        for _ in 0..<rounds { count += tok.encode(doc).count }
        let docSeconds = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
        let longWord = String(repeating: "thequickbrownfoxjumps", count: 5_000)  // one 105,000-byte word (heap merge)
        let t1 = DispatchTime.now().uptimeNanoseconds
        let longIDs = tok.encode(longWord).count
        print(String(format: "BENCHLONG pilot encode: one %d-byte word in %.3f s, %d ids", longWord.utf8.count,
                     Double(DispatchTime.now().uptimeNanoseconds - t1) / 1e9, longIDs))
        print(String(format: "BENCHDOC pilot encode: %.3f s for %d rounds of one %d-byte document, %.2f MB/s", docSeconds, rounds,
                     doc.utf8.count, Double(doc.utf8.count * rounds) / docSeconds / 1e6))
    }
}
