import Foundation
import PilotData
import Testing

@Suite struct GeneratorTests {
    static func tiny(_ s: Scenario = .vu, seed: UInt64 = 7) throws -> GeneratedScenario {
        try ScenarioGenerator.generate(try ScenarioConfig(scenario: s, seed: seed, size: .tiny))
    }

    @Test func tinyScenarioShape() throws {
        let s = try Self.tiny()
        #expect(s.clients.count == 9)
        for (k, c) in s.clients.enumerated() {
            #expect(c.examples.count == SizePreset.tiny.perClient)
            #expect(c.metadata.client == k)
            #expect(c.metadata.task == Scenario.vu.tasks[k / 3].rawValue)
            #expect(c.examples.allSatisfy { $0.task.rawValue == c.metadata.task })
        }
        #expect(Set(s.tests.keys) == Set(Scenario.vu.tasks))
        // Captions plus only tasks that no client owns (docs/calibration.md).
        #expect(Set(s.pretrain.examples.map(\.task)).intersection(Scenario.vu.tasks) == [.caption])
        #expect(s.pretrain.examples.count == SizePreset.tiny.pretrain)
    }

    @Test func splitsAreDisjoint() throws {
        let s = try Self.tiny(.gvqa)
        var ids = Set<String>(), images = Set<[UInt8]>()
        for e in s.pretrain.examples + s.clients.flatMap(\.examples) + s.tests.values.flatMap(\.examples) {
            #expect(ids.insert(e.id).inserted, "duplicate id \(e.id)")
            #expect(images.insert(e.image.pixels).inserted, "duplicate image \(e.id)")
        }
    }

    @Test func sameSeedSameDataOtherSeedOtherData() throws {
        let a = try Self.tiny(seed: 3), b = try Self.tiny(seed: 3), c = try Self.tiny(seed: 4)
        #expect(a.clients == b.clients && a.tests == b.tests && a.pretrain == b.pretrain && a.tokenizer == b.tokenizer)
        #expect(a.clients[0].examples[0].image != c.clients[0].examples[0].image)
        #expect(a.clients.map { $0.examples.map(\.answer) } != c.clients.map { $0.examples.map(\.answer) })
    }

    @Test(arguments: Scenario.allCases) func everyTextFitsTheLayoutAndRoundTrips(_ scenario: Scenario) throws {
        let s = try ScenarioGenerator.generate(try ScenarioConfig(scenario: scenario, seed: 1, size: .tiny, perClient: 60, testPerTask: 60, pretrainCount: 600))
        let tok = s.tokenizer
        #expect(tok.count <= 512)
        for e in s.pretrain.examples + s.clients.flatMap(\.examples) + s.tests.values.flatMap(\.examples) {
            let enc = try tok.encode(e)  // throws when instruction + answer exceed 45 tokens
            #expect(enc.ids.count == 48 && enc.targetMask.count == 48)
            #expect(enc.unknownCount == 0, "unknown words in \(e.id): \(tok.unknownPieces(e.instruction + " " + e.answer))")
            #expect(tok.decode(tok.encode(e.instruction)) == e.instruction)
            #expect(tok.decode(tok.encode(e.answer)) == e.answer)
            for r in e.references { #expect(tok.decode(tok.encode(r)) == r) }
            #expect(tok.encode(e.answer).count <= 13, "long answer \(e.id): \(e.answer)")
        }
    }

    @Test func captionsHaveFiveDistinctReferences() throws {
        let s = try Self.tiny()
        for e in s.tests[.caption]!.examples {
            #expect(e.references.count == 5)
            #expect(Set(e.references).count == 5)
            #expect(e.answer == e.references[0])
        }
    }

    @Test func groundingAnswersAreNormalisedBoxes() throws {
        let s = try Self.tiny()
        for e in s.tests[.grounding]!.examples {
            let b = try #require(Metrics.parseBox(e.answer), "\(e.answer)")
            #expect(0 <= b.x1 && b.x1 < b.x2 && b.x2 <= 1 && 0 <= b.y1 && b.y1 < b.y2 && b.y2 <= 1)
            #expect(e.answer.range(of: #"^\[\d\.\d\d,\d\.\d\d,\d\.\d\d,\d\.\d\d\]$"#, options: .regularExpression) != nil)
        }
    }

    @Test func dirichletSplitKeepsEveryExampleOnce() throws {
        let cfg = try ScenarioConfig(scenario: .vu, seed: 5, size: .tiny, split: .dirichlet(alpha: 0.3))
        let s = try ScenarioGenerator.generate(cfg)
        for t in 0..<3 {
            let parts = s.clients[(3 * t)..<(3 * t + 3)]
            let ids = parts.flatMap { $0.examples.map(\.id) }
            #expect(ids.count == 3 * SizePreset.tiny.perClient)
            #expect(Set(ids).count == ids.count)
            #expect(parts.allSatisfy { !$0.examples.isEmpty })
        }
        let random = try Self.tiny(seed: 5)
        #expect(s.clients.map(\.examples.count) != random.clients.map(\.examples.count) || s.clients[0].examples != random.clients[0].examples)
    }
}

@Suite struct LexiconTests {
    /// The generator's lexicon alone must cover every generated word, so that a tokenizer
    /// built from a small pretraining split never turns generated data into <unk>.
    @Test(arguments: Scenario.allCases) func lexiconCoversEveryGeneratedWord(_ scenario: Scenario) throws {
        let tok = try Tokenizer.build(from: [String](), required: TaskGenerator.lexicon)
        #expect(tok.count <= 512)
        let s = try ScenarioGenerator.generate(try ScenarioConfig(scenario: scenario, seed: 99, size: .tiny, perClient: 100, testPerTask: 10, pretrainCount: 1000))
        var missing = Set<String>()
        for e in s.pretrain.examples + s.clients.flatMap(\.examples) {
            for text in [e.instruction, e.answer] + e.references { missing.formUnion(tok.unknownPieces(text)) }
        }
        #expect(missing.isEmpty, "not in TaskGenerator.lexicon: \(missing.sorted())")
    }

    @Test("the default pretraining split holds captions and only tasks no client owns; another mix changes only the pretraining split, not the clients, tests or vocabulary")
    func pretrainingMix() throws {
        var cfg = try ScenarioConfig(scenario: .vu, seed: 7, size: .tiny)
        cfg.pretrainMix = [.caption: 0.4, .vqa: 0.15, .grounding: 0.15, .ocr: 0.15, .science: 0.15]
        let captions = try GeneratorTests.tiny(), mixed = try ScenarioGenerator.generate(cfg)
        #expect(captions.pretrain.examples.count == mixed.pretrain.examples.count)
        #expect(Set(captions.pretrain.examples.map(\.task)) == [.caption, .ocr, .science])
        let gvqa = try GeneratorTests.tiny(.gvqa)
        #expect(Set(gvqa.pretrain.examples.map(\.task)) == [.caption, .grounding])
        let n = captions.pretrain.examples.count
        #expect(captions.pretrain.examples.filter { $0.task == .caption }.count == n / 2)
        #expect(Set(mixed.pretrain.examples.map(\.task)) == Set(FedTask.allCases))
        let ids: (GeneratedScenario) -> [[String]] = { g in g.clients.map { c in c.examples.map { e in e.id + "|" + e.answer } } }
        #expect(ids(captions) == ids(mixed))
        #expect(captions.tokenizer.count == mixed.tokenizer.count)
    }
}
