import Foundation
@testable import PilotData
import PilotTestSupport
import Testing

@Suite struct MetricsTests {
    struct Corpus {
        var name: String
        var ids: [String]
        var refs: [[String]]
        var preds: [String]
        var score: Double
        var perImage: [Double]
    }

    /// One corpus as cider_ref.py writes it. Decoded with JSONDecoder, which reads every double to the
    /// nearest value (JSONSerialization on Linux can be 1 ulp off, too coarse for a bitwise comparison).
    struct GoldenCorpus: Decodable {
        var refs: [String: [String]]
        var preds: [String: String]
        var cider_d: Double
        var per_image: [String: Double]
        func corpus(_ name: String) -> Corpus {
            let ids = refs.keys.sorted()  // cider_ref.py scores ids in sorted order
            return Corpus(name: name, ids: ids, refs: ids.map { refs[$0]! }, preds: ids.map { preds[$0]! },
                          score: cider_d, perImage: ids.map { per_image[$0]! })
        }
    }
    struct Golden: Decodable { var corpora: [String: GoldenCorpus] }

    static func corpora() throws -> [Corpus] {
        let root = try JSONDecoder().decode(Golden.self, from: Data(ciderGoldenJSON.utf8))
        return root.corpora.keys.sorted().map { root.corpora[$0]!.corpus($0) }
    }

    static func close(_ a: Double, _ b: Double, rel: Double = 1e-9) -> Bool {
        abs(a - b) <= rel * max(abs(a), abs(b)) || abs(a - b) < 1e-300
    }

    /// The golden corpora and Tests/Fixtures/cider/random300.json (300 items, so the corpus mean takes
    /// NumPy's pairwise halving branch): every per-item score and the corpus score have pycocoevalcap's bits.
    @Test func ciderDMatchesPycocoevalcapBitForBit() throws {
        var all = try Self.corpora()
        #expect(all.count >= 6)
        let big = try JSONDecoder().decode(GoldenCorpus.self, from: Data(contentsOf: URL(fileURLWithPath: repositoryRoot + "/Tests/Fixtures/cider/random300.json")))
        all.append(big.corpus("random300"))
        for c in all {
            let r = try Metrics.ciderD(predictions: c.preds, references: c.refs)
            #expect(r.score == c.score, "\(c.name): corpus \(r.score) vs golden \(c.score)")
            for (i, id) in c.ids.enumerated() {
                #expect(r.perItem[i] == c.perImage[i], "\(c.name)/\(id): \(r.perItem[i]) vs golden \(c.perImage[i])")
            }
        }
    }

    /// NumPy's summation order (np.add.reduce, which np.mean uses), checked on sums whose order shows.
    @Test func numpySumOrder() {
        #expect(Metrics.numpySum([]) == 0)
        #expect(Metrics.numpySum([1e16, 1, -1e16]) == 0)                  // < 8 values: left to right
        let nine: [Double] = [1e16, 1, 1, 1, 1, 1, 1, 1, 1]               // 8 accumulators, then the 9th
        let big: Double = 1e16, one: Double = 1
        let blocks: Double = ((big + one) + (one + one)) + ((one + one) + (one + one))
        #expect(Metrics.numpySum(nine) == 0.0 + (blocks + one))
        #expect(Metrics.numpySum(nine) != nine.reduce(0, +))
    }

    @Test func ciderQuirks() throws {
        // One image: idf = log(1) - log(df) = 0, so everything scores 0.
        #expect(try Metrics.ciderD(predictions: ["a red circle"], references: [["a red circle"]]).score == 0)
        // A caption sharing nothing with its references scores exactly 0.
        let r = try Metrics.ciderD(predictions: ["zebra piano", "a red circle"], references: [["a blue square"], ["a red circle"]])
        #expect(r.perItem[0] == 0 && r.perItem[1] > 0)
        #expect(throws: (any Error).self) { try Metrics.ciderD(predictions: ["x"], references: [[]]) }
    }

    @Test func vqaNormalisation() {
        #expect(Metrics.normalizeAnswer("Two.") == "2")
        #expect(Metrics.normalizeAnswer("  The RED circle! ") == "red circle")
        #expect(Metrics.normalizeAnswer("an apple, please") == "apple please")
        #expect(Metrics.normalizeAnswer("3.5") == "3.5")
        #expect(Metrics.normalizeAnswer("don't") == "dont")
        #expect(Metrics.exactMatch("Yes", references: ["yes"]) == 1)
        #expect(Metrics.exactMatch("three", references: ["3"]) == 1)
        #expect(Metrics.exactMatch("a cat", references: ["cat"]) == 1)
        #expect(Metrics.exactMatch("cats", references: ["cat"]) == 0)
        #expect(Metrics.exactMatch("", references: ["cat"]) == 0)
    }

    @Test func boxParserIsTolerant() {
        #expect(Metrics.parseBox("[0.12,0.40,0.31,0.62]") == Metrics.Box(0.12, 0.40, 0.31, 0.62))
        #expect(Metrics.parseBox(" [ 0.1 , 0.2, 0.3 ,0.4 ] ") == Metrics.Box(0.1, 0.2, 0.3, 0.4))
        #expect(Metrics.parseBox("the box is [0.1,0.2,0.3,0.4].") == Metrics.Box(0.1, 0.2, 0.3, 0.4))
        #expect(Metrics.parseBox("0.1 0.2 0.3 0.4") == Metrics.Box(0.1, 0.2, 0.3, 0.4))
        #expect(Metrics.parseBox("[0.1,0.2,0.3") == nil)
        #expect(Metrics.parseBox("[0.1,0.2,0.3,0.4,0.5]") == nil)
        #expect(Metrics.parseBox("") == nil)
        #expect(Metrics.parseBox("red circle") == nil)
        #expect(Metrics.parseBox("[,,,]") == nil)
        #expect(Metrics.parseBox("[1e999,0,1,1]") == nil || Metrics.parseBox("[1e999,0,1,1]") != nil)  // never crashes
        #expect(Metrics.parseBox("[0.1.2.3,0.2,0.3,0.4]") == nil)
    }

    @Test func iouAndAccuracy() throws {
        let a = Metrics.Box(0, 0, 0.5, 0.5), b = Metrics.Box(0.25, 0, 0.75, 0.5)
        #expect(abs(Metrics.iou(a, b) - 1.0 / 3.0) < 1e-12)
        #expect(Metrics.iou(a, a) == 1)
        #expect(Metrics.iou(a, Metrics.Box(0.6, 0.6, 0.9, 0.9)) == 0)
        #expect(Metrics.iou(Metrics.Box(0.5, 0.5, 0.1, 0.1), a) == 0)  // inverted box is empty
        let r = try Metrics.score(task: .grounding,
                                  predictions: ["[0.00,0.00,0.50,0.50]", "[0.25,0.00,0.75,0.50]", "garbage", "", "[0.0,0.0,0.45,0.5]"],
                                  references: Array(repeating: ["[0.00,0.00,0.50,0.50]"], count: 5))
        #expect(r.perItem == [1, 0, 0, 0, 1])
        #expect(abs(r.score - 0.4) < 1e-12)
    }

    @Test func choiceLetters() throws {
        #expect(Metrics.choiceLetter("b") == "b")
        #expect(Metrics.choiceLetter("(B)") == "b")
        #expect(Metrics.choiceLetter("B. float") == "b")
        #expect(Metrics.choiceLetter("answer: c") == "c")
        #expect(Metrics.choiceLetter("float") == nil)
        #expect(Metrics.choiceLetter("") == nil)
        let r = try Metrics.score(task: .science, predictions: ["b", "A", "sink", "c)"], references: [["b"], ["a"], ["a"], ["b"]])
        #expect(r.perItem == [1, 1, 0, 0])
        // References that are option texts (task version 2): exact match after normalisation.
        let t = try Metrics.score(task: .science, predictions: ["Hot.", "two", "b", "cold", "a"], references: [["hot"], ["2"], ["hot"], ["hot"], ["a"]])
        #expect(t.perItem == [1, 1, 0, 0, 1])
    }

    @Test func scoreChecksLengths() {
        #expect(throws: (any Error).self) { try Metrics.score(task: .vqa, predictions: ["a"], references: []) }
    }
}
