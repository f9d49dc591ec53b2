import PilotData
import Testing

/// vqa_accuracy and anls against values worked out by hand from their definitions.
@Suite struct CustomMetricTests {
    @Test func vqaNormalisationFollowsTheOfficialScript() {
        #expect(Metrics.vqaNormalize("Two.") == "2")
        #expect(Metrics.vqaNormalize("The dog") == "dog")
        #expect(Metrics.vqaNormalize("1,000") == "1000")           // digit,digit: every mark is deleted
        #expect(Metrics.vqaNormalize("yes, it is") == "yes it is")  // a mark next to a space is deleted
        #expect(Metrics.vqaNormalize("red/blue") == "red blue")     // otherwise it becomes a space
        #expect(Metrics.vqaNormalize("3.5 m") == "3.5 m")           // a period before a digit stays
        #expect(Metrics.vqaNormalize("dont") == "don't")            // contractions restored
        #expect(Metrics.vqaNormalize("  A\tcat\n") == "cat")
        #expect(Metrics.vqaNormalize("none") == "0")
    }

    /// With 10 references: 1, 2, 3 and 4 matching humans give 0.3, 0.6, 0.9 and 1.0.
    @Test(arguments: [(1, 0.3), (2, 0.6), (3, 0.9), (4, 1.0), (0, 0.0)])
    func vqaAccuracyOverTenReferences(_ matching: Int, _ expected: Double) {
        let refs = Array(repeating: "two", count: matching) + Array(repeating: "3", count: 10 - matching)
        #expect(abs(Metrics.vqaAccuracy("2.", references: refs) - expected) < 1e-12)
    }

    @Test func vqaAccuracyWithOneReferenceIsAMatch() throws {
        #expect(Metrics.vqaAccuracy("A red car.", references: ["red car"]) == 1)
        #expect(Metrics.vqaAccuracy("blue car", references: ["red car"]) == 0)
        let r = try Metrics.score(metric: .vqaAccuracy, predictions: ["2", "x"], references: [["2", "2", "2", "1"], ["y"]])
        // Item 1: three refs match: each leaves 2 others → 2/3; the fourth leaves 3 → 1; mean 0.75.
        #expect(abs(r.perItem[0] - 0.75) < 1e-12 && r.perItem[1] == 0 && abs(r.score - 0.375) < 1e-12)
    }

    @Test func anlsUsesNormalisedLevenshteinWithThreshold() throws {
        #expect(Metrics.levenshtein("kitten", "sitting") == 3)
        #expect(abs(Metrics.anls("hello world", references: ["hello wrld"]) - (1 - 1.0 / 11)) < 1e-12)
        #expect(abs(Metrics.anls("abc", references: ["abcd"]) - 0.75) < 1e-12)
        #expect(Metrics.anls("ab", references: ["abcd"]) == 0)            // NL = 0.5 is not below τ
        #expect(Metrics.anls("xyz", references: ["abc"]) == 0)
        #expect(Metrics.anls(" Hello  ", references: ["hello"]) == 1)      // case and spaces do not count
        #expect(abs(Metrics.anls("abc", references: ["xyz", "abcd", "ab"]) - 0.75) < 1e-12)  // best reference
        #expect(Metrics.anls("", references: [""]) == 1)
        let r = try Metrics.score(metric: .anls, predictions: ["abc", "q"], references: [["abcd"], ["zz"]])
        #expect(abs(r.score - 0.375) < 1e-12)
    }

    @Test func customTasksCarryTheirMetric() throws {
        let t = try FedTask(name: "textvqa", metric: .vqaAccuracy)
        #expect(!t.isBuiltin && t.metric == .vqaAccuracy && FedTask.caption.isBuiltin)
        #expect(throws: (any Error).self) { try FedTask(name: "caption", metric: .anls) }   // built-in keeps cider_d
        #expect(throws: (any Error).self) { try FedTask(name: "Bad Name", metric: .anls) }
        #expect(try FedTask(name: "caption", metric: .ciderD) == .caption)
        let r = try Metrics.score(task: t, predictions: ["two"], references: [["2"]])
        #expect(r.kind == .vqaAccuracy && r.score == 1)
        #expect(try FedTask.named("docs", metric: "anls").metric == .anls)
        #expect(throws: (any Error).self) { try FedTask.named("docs", metric: "bleu") }
        #expect(try MetricKind.parse("ANLS") == .anls)
    }
}
