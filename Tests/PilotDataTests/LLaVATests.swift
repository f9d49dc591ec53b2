import Foundation
import PilotData
import Testing

@Suite struct LLaVATests {
    @Test(arguments: FedTask.allCases) func exportThenImportGivesTheSameShard(_ task: FedTask) throws {
        let dir = try temporaryDirectory("llava-\(task.rawValue)")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let scenario: Scenario = Scenario.vu.tasks.contains(task) ? .vu : .gvqa
        let s = try ScenarioGenerator.generate(try ScenarioConfig(scenario: scenario, seed: 21, size: .tiny))
        let shard = s.tests[task]!
        try shard.write(to: dir + "/orig.h5")
        let original = try Shard.read(path: dir + "/orig.h5")
        let json = try LLaVAJSON.export(original.examples, to: dir + "/export")
        let report = try LLaVAJSON.importFile(json: json, images: dir + "/export/images", task: task, tokenizer: s.tokenizer)
        #expect(report.problems.isEmpty && report.warnings.isEmpty, "\(report.text)")
        #expect(report.unknownWordCount == 0)
        let imported = Shard(metadata: original.metadata, examples: report.examples)
        try imported.write(to: dir + "/back.h5")
        #expect(try Shard.read(path: dir + "/back.h5").examples == original.examples)
    }

    /// A deliberately broken set: one record per problem kind, plus valid ones.
    @Test func importerReportsEveryBrokenRecord() throws {
        let dir = try temporaryDirectory("broken")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let images = dir + "/img"
        try FileManager.default.createDirectory(atPath: images, withIntermediateDirectories: true)
        var big = RGBImage(width: 64, height: 48, fill: RGB(10, 200, 30))
        big.fillRect(x: 0, y: 0, w: 32, h: 24, RGB(250, 0, 0))
        try PNG.write(big, to: images + "/big.png")
        try PNG.write(RGBImage(width: 32, height: 32, fill: RGB(1, 2, 3)), to: images + "/ok.png")
        try Data("this is not a png".utf8).write(to: URL(fileURLWithPath: images + "/fake.png"))
        var truncated = try PNG.encode(RGBImage(width: 32, height: 32, fill: RGB(9, 9, 9)))
        truncated.removeLast(20)
        try Data(truncated).write(to: URL(fileURLWithPath: images + "/cut.png"))
        func rec(_ id: String, _ image: String?, _ human: String?, _ gpt: String?) -> String {
            var turns: [String] = []
            if let human { turns.append(#"{"from": "human", "value": \#(quoted(human))}"#) }
            if let gpt { turns.append(#"{"from": "gpt", "value": \#(quoted(gpt))}"#) }
            let img = image.map { #""image": \#(quoted($0)), "# } ?? ""
            return #"{"id": \#(quoted(id)), \#(img)"conversations": [\#(turns.joined(separator: ", "))]}"#
        }
        let records = [
            rec("good-1", "ok.png", "<image>\nwhat color is the zebra?", "Blue"),
            rec("good-big", "big.png", "what is red?\n<image>", "the top left"),
            rec("no-file", "missing.png", "<image>\nq?", "a"),
            rec("not-png", "fake.png", "<image>\nq?", "a"),
            rec("cut-png", "cut.png", "<image>\nq?", "a"),
            rec("no-tag", "ok.png", "what is this?", "a"),
            rec("no-answer", "ok.png", "<image>\nq?", nil),
            rec("empty-answer", "ok.png", "<image>\nq?", "   "),
            rec("no-image-field", nil, "<image>\nq?", "a"),
            rec("good-1", "ok.png", "<image>\nq?", "dup"),
            #"{"image": "ok.png", "conversations": []}"#,
            #""just a string""#,
        ]
        try Data(("[" + records.joined(separator: ",\n") + "]").utf8).write(to: URL(fileURLWithPath: dir + "/data.json"))
        let tok = try Tokenizer.build(from: ["what color is the blue top left red"])
        let report = try LLaVAJSON.importFile(json: dir + "/data.json", images: images, task: .vqa, tokenizer: tok, imageMode: .stretch)
        #expect(report.total == 12)
        #expect(report.examples.map(\.id) == ["good-1", "good-big"])
        #expect(report.problems.count == 10)
        let byID = Dictionary(report.problems.map { ($0.1.record, $0.0) }, uniquingKeysWith: { a, _ in a })
        #expect(byID["no-file"] == .missingImage)
        #expect(byID["not-png"] == .unreadableImage)
        #expect(byID["cut-png"] == .unreadableImage)
        #expect(byID["no-tag"] == .noImageTag)
        #expect(byID["no-answer"] == .noAnswerTurn)
        #expect(byID["empty-answer"] == .emptyAnswer)
        #expect(byID["no-image-field"] == .missingImageField)
        #expect(byID["good-1"] == .duplicateID)
        #expect(byID["#10"] == .missingID)
        #expect(byID["#11"] == .notAnObject)
        #expect(report.count(.resized) == 1)
        // "zebra" and "is this"… only words of kept records count: zebra (good-1).
        #expect(report.unknownWords == ["zebra": 1])
        let text = report.text
        for needle in ["rejected 'no-file': missing image", "rejected 'not-png': unreadable image", "not a PNG",
                       "rejected 'no-tag': no <image> tag", "records: 12, imported: 2, rejected: 10", "missing image: 1",
                       "unreadable image: 2", "unknown words (mapped to <unk>): 1 occurrences of 1 words; most frequent: zebra (1)"] {
            #expect(text.contains(needle), "report lacks \(needle):\n\(text)")
        }
        let big32 = report.examples[1].image
        #expect(big32.width == 32 && big32.height == 32)
        #expect(big32.pixel(2, 2) == RGB(250, 0, 0) && big32.pixel(29, 29) == RGB(10, 200, 30))
        #expect(report.examples[0].instruction == "what color is the zebra?" && report.examples[0].answer == "Blue")
        #expect(report.examples[1].instruction == "what is red?")
    }

    @Test func importFailsWhenNothingValidRemains() throws {
        let dir = try temporaryDirectory("allbad")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Data(#"[{"id": "x", "image": "nope.png", "conversations": [{"from": "human", "value": "<image>\nq"}, {"from": "gpt", "value": "a"}]}]"#.utf8)
            .write(to: URL(fileURLWithPath: dir + "/d.json"))
        do {
            _ = try LLaVAJSON.importFile(json: dir + "/d.json", images: dir, task: .vqa)
            Issue.record("expected the import to fail")
        } catch {
            #expect("\(error)".contains("no valid record"))
            #expect("\(error)".contains("rejected 'x': missing image"))
        }
        #expect(throws: (any Error).self) { try LLaVAJSON.importFile(json: dir + "/absent.json", images: dir, task: .vqa) }
    }

    @Test func groundingAndScienceAnswersAreChecked() throws {
        let dir = try temporaryDirectory("taskcheck")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try PNG.write(RGBImage(width: 32, height: 32), to: dir + "/i.png")
        let json = #"[{"id": "g1", "image": "i.png", "conversations": [{"from": "human", "value": "<image>\nfind it."}, {"from": "gpt", "value": "[0.1,0.2,0.3,0.4]"}]},"# +
            #" {"id": "g2", "image": "i.png", "conversations": [{"from": "human", "value": "<image>\nfind it."}, {"from": "gpt", "value": "somewhere"}]}]"#
        try Data(json.utf8).write(to: URL(fileURLWithPath: dir + "/g.json"))
        let r = try LLaVAJSON.importFile(json: dir + "/g.json", images: dir, task: .grounding)
        #expect(r.examples.map(\.id) == ["g1"])
        #expect(r.problems.first?.0 == .invalidAnswer && r.problems.first?.1.record == "g2")
    }
}

func quoted(_ s: String) -> String {
    String(data: try! JSONSerialization.data(withJSONObject: [s]), encoding: .utf8)!.dropFirst().dropLast().description
}
