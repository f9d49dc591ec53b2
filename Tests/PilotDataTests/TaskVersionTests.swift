import Foundation
import PilotData
import Testing

/// Task version 2 (docs/calibration.md §6) changes grounding and science only, and in the way it
/// documents; version 1 stays the default.
@Suite struct TaskVersionTests {
    static func generate(_ s: Scenario, _ v: TaskVersion) throws -> GeneratedScenario {
        var cfg = try ScenarioConfig(scenario: s, seed: 3, size: .tiny, perClient: 40, testPerTask: 60, pretrainCount: 300)
        cfg.taskVersion = v
        return try ScenarioGenerator.generate(cfg)
    }

    static func examples(_ g: GeneratedScenario, _ task: FedTask) -> [Example] {
        (g.pretrain.examples + g.clients.flatMap(\.examples) + g.tests.values.flatMap(\.examples)).filter { $0.task == task }
    }

    @Test func versionOneIsTheDefault() throws {
        #expect(try ScenarioConfig(scenario: .vu).taskVersion == .v1)
        #expect(try TaskVersion.parse("2") == .v2 && TaskVersion.parse("v1") == .v1)
        #expect(throws: (any Error).self) { try TaskVersion.parse("3") }
    }

    @Test(arguments: Scenario.allCases) func captionVQAAndOCRAreUnchanged(_ s: Scenario) throws {
        let a = try Self.generate(s, .v1), b = try Self.generate(s, .v2)
        for task in [FedTask.caption, .vqa, .ocr] {
            let ea = Self.examples(a, task), eb = Self.examples(b, task)
            #expect(!ea.isEmpty)
            #expect(ea == eb, "\(task) differs between task versions 1 and 2 in \(s)")
        }
    }

    @Test func groundingBoxesAreTheCoveringCellsOfVersionOnesBox() throws {
        let a = Self.examples(try Self.generate(.vu, .v1), .grounding), b = Self.examples(try Self.generate(.vu, .v2), .grounding)
        #expect(a.count == b.count && a.count > 100)
        var distinct = Set<String>()
        for (x, y) in zip(a, b) {
            #expect(x.image == y.image && x.instruction == y.instruction)
            let fine = try #require(Metrics.parseBox(x.answer)), grid = try #require(Metrics.parseBox(y.answer))
            for c in [grid.x1, grid.y1, grid.x2, grid.y2] {
                #expect(abs(c * 4 - (c * 4).rounded()) < 1e-9, "\(y.id): \(y.answer) is not on the 0.25 grid")
            }
            // The smallest grid box that contains the fine box.
            #expect(grid.x1 <= fine.x1 && grid.y1 <= fine.y1 && grid.x2 >= fine.x2 && grid.y2 >= fine.y2, "\(y.answer) ⊉ \(x.answer)")
            #expect(fine.x1 - grid.x1 < 0.25 && fine.y1 - grid.y1 < 0.25 && grid.x2 - fine.x2 < 0.25 && grid.y2 - fine.y2 < 0.25)
            distinct.insert(y.answer)
        }
        #expect(distinct.count > 10, "too few distinct grid boxes: \(distinct.count)")
    }

    @Test func scienceAnswersWithAnOptionsTextInOneFixedWorld() throws {
        let v1 = Self.examples(try Self.generate(.gvqa, .v1), .science), v2 = Self.examples(try Self.generate(.gvqa, .v2), .science)
        #expect(v2.count > 100)
        #expect(v1.allSatisfy { Metrics.choiceLetter($0.answer) != nil })
        // Every fact stated in any context ("red things are hot.", "large shapes sink.",
        // "things on the left are soft.") has one value across the whole v2 dataset; in v1 they vary.
        func facts(_ examples: [Example]) -> [String: Set<String>] {
            var seen: [String: Set<String>] = [:]
            for e in examples {
                for part in e.instruction.split(separator: ".") {
                    var s = part.trimmingCharacters(in: .whitespaces)
                    if s.hasPrefix("context: ") { s = String(s.dropFirst(9)) }
                    if let r = s.range(of: " are "), s.hasPrefix("things ") || s.hasSuffix("things" + s[r.lowerBound...]) && s.contains(" things are ") {
                        // "red things are hot", "things on the left are soft": subject and property set → value.
                        let value = String(s[r.upperBound...])
                        let set = TaskGenerator.propertySets.firstIndex { $0.contains(value) } ?? -1
                        seen["\(s[..<r.lowerBound]) (set \(set))", default: []].insert(value)
                    } else if s.hasPrefix("large shapes ") || s.hasPrefix("small shapes ") {
                        seen[String(s.prefix(12)), default: []].insert(String(s.dropFirst(13)))
                    }
                }
            }
            return seen
        }
        let f2 = facts(v2), f1 = facts(v1)
        #expect(f2.count > 20, "too few facts parsed: \(f2.count)")
        for (k, values) in f2 { #expect(values.count == 1, "fact '\(k)' has values \(values.sorted())") }
        #expect(f1.values.contains { $0.count > 1 }, "v1 facts should vary; the parser finds none that do")
        for e in v2 {
            #expect(e.instruction.contains(". \(e.answer) ") || e.instruction.hasSuffix(". \(e.answer)"), "\(e.id): '\(e.answer)' is not an option")
            #expect(Metrics.choiceAccuracy(e.answer, references: [e.answer]) == 1)
            #expect(Metrics.choiceAccuracy("b", references: [e.answer]) == 0)
        }
    }

    @Test("pilot data stats' random science baseline picks an option in either version (chance 1/3)", arguments: TaskVersion.allCases)
    func randomScienceBaselineIsChance(_ v: TaskVersion) throws {
        var cfg = try ScenarioConfig(scenario: .gvqa, seed: 4, size: .tiny, perClient: 40, testPerTask: 600, pretrainCount: 100)
        cfg.taskVersion = v
        let g = try ScenarioGenerator.generate(cfg)
        let stats = try TaskStats.compute(task: .science, train: g.clients.filter { $0.metadata.task == "science" }.flatMap(\.examples),
                                          test: g.tests[.science]!.examples, tokenizer: g.tokenizer)
        #expect(stats.randomBaseline > 0.25 && stats.randomBaseline < 0.42, "random baseline \(stats.randomBaseline) with task version \(v.rawValue)")
    }

    @Test(arguments: Scenario.allCases) func versionTwoTextsFitTheLayoutAndTheLexicon(_ s: Scenario) throws {
        let g = try Self.generate(s, .v2)
        let lexicon = try Tokenizer.build(from: [String](), required: TaskGenerator.lexicon)
        for e in g.pretrain.examples + g.clients.flatMap(\.examples) + g.tests.values.flatMap(\.examples) {
            let enc = try g.tokenizer.encode(e)
            #expect(enc.unknownCount == 0)
            for text in [e.instruction, e.answer] { #expect(lexicon.unknownPieces(text).isEmpty, "\(e.id): \(text)") }
        }
        let source = g.clients[0].metadata.source
        #expect(source.hasSuffix("tasks=v2"), "\(source)")
    }
}
