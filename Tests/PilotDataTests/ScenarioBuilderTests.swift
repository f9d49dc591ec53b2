import Foundation
import PilotData
import Testing

/// A small LLaVA data set in a temporary folder: JPEG and PNG images of several sizes, single- and
/// multi-turn records, everyday words.
struct LLaVAFixture {
    let dir: String
    var images: String { dir + "/images" }

    init(_ label: String) throws {
        dir = try temporaryDirectory(label)
        try FileManager.default.createDirectory(atPath: dir + "/images", withIntermediateDirectories: true)
    }

    func cleanup() { try? FileManager.default.removeItem(atPath: dir) }

    /// Writes an image (JPEG for even i, PNG for odd) and returns its file name.
    func image(_ i: Int, width: Int = 40, height: Int = 30) throws -> String {
        var img = RGBImage(width: width, height: height, fill: RGB(UInt8(20 + i % 200), 90, 160))
        img.fillRect(x: 2, y: 2, w: width / 2, h: height / 2, RGB(230, UInt8((i * 37) % 256), 40))
        let name = i % 2 == 0 ? "img\(i).jpg" : "img\(i).png"
        if i % 2 == 0 { try JPEG.write(img, to: images + "/" + name) } else { try PNG.write(img, to: images + "/" + name) }
        return name
    }

    static func record(_ id: String, image: String?, turns: [(String, String)], extra: String = "") -> String {
        var t: [String] = []
        for (k, (h, g)) in turns.enumerated() {
            let human = k == 0 && image != nil ? "<image>\n" + h : h
            t.append(#"{"from": "human", "value": \#(quoted(human))}"#)
            t.append(#"{"from": "gpt", "value": \#(quoted(g))}"#)
        }
        let img = image.map { #""image": \#(quoted($0)), "# } ?? ""
        return #"{"id": \#(quoted(id)), \#(img)"conversations": [\#(t.joined(separator: ", "))]\#(extra)}"#
    }

    @discardableResult
    func json(_ name: String, _ records: [String]) throws -> String {
        let path = dir + "/" + name
        try Data(("[\n" + records.joined(separator: ",\n") + "\n]").utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// `n` records of one task, every third one with two exchanges.
    func task(_ name: String, _ n: Int, first: Int = 0) throws -> String {
        var recs: [String] = []
        let colours = ["orange", "pink", "teal", "maroon", "beige"]
        for i in first..<(first + n) {
            var turns = [("what colour is the square?", colours[i % colours.count])]
            if i % 3 == 0 { turns.append(("is it a hexagon?", i % 2 == 0 ? "yes" : "no")) }
            recs.append(Self.record("\(name)-\(i)", image: try image(i, width: 30 + i % 7 * 10, height: 24 + i % 5 * 9), turns: turns))
        }
        return try json(name + ".json", recs)
    }
}

@Suite struct ScenarioBuilderTests {
    @Test func hostileRecordsAreRefusedByName() throws {
        let f = try LLaVAFixture("hostile")
        defer { f.cleanup() }
        let ok = try f.image(1)
        try "secret".write(toFile: f.dir + "/outside.png", atomically: true, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: f.images + "/link.png", withDestinationPath: f.dir + "/outside.png")
        let q = [("what colour?", "pink")]
        let path = try f.json("h.json", [
            LLaVAFixture.record("good", image: ok, turns: q),
            LLaVAFixture.record("escape", image: "../../etc/passwd", turns: q),
            LLaVAFixture.record("absolute", image: "/etc/passwd", turns: q),
            LLaVAFixture.record("symlink", image: "link.png", turns: q),
            LLaVAFixture.record("two-tags", image: ok, turns: [("what <image> colour?", "pink")]),
            LLaVAFixture.record("late-tag", image: ok, turns: [("what colour?", "pink"), ("<image> and now?", "red")]),
            #"{"id": "gpt-first", "image": "\#(ok)", "conversations": [{"from": "gpt", "value": "hi"}, {"from": "human", "value": "<image> q"}]}"#,
            #"{"id": "two-humans", "image": "\#(ok)", "conversations": [{"from": "human", "value": "<image> q"}, {"from": "human", "value": "q2"}, {"from": "gpt", "value": "a"}]}"#,
            LLaVAFixture.record("text-only", image: nil, turns: [("say a colour", "teal")]),
            #"{"id": "tag-at-end", "image": "\#(ok)", "conversations": [{"from": "human", "value": "what colour is it?\n<image>"}, {"from": "gpt", "value": "pink"}, {"from": "human", "value": "sure?"}]}"#,
        ])
        var importer = try RecordImporter(images: f.images, options: LLaVAJSON.ImportOptions())
        var r = LLaVAJSON.ImportReport()
        try importer.importFile(json: path, task: .vqa, into: &r)
        let problem = Dictionary(r.problems.map { ($0.1.record, $0.0) }, uniquingKeysWith: { a, _ in a })
        #expect(problem["escape"] == .imageOutsideFolder && problem["absolute"] == .imageOutsideFolder && problem["symlink"] == .imageOutsideFolder)
        #expect(problem["two-tags"] == .misplacedImageTag && problem["late-tag"] == .misplacedImageTag)
        #expect(problem["gpt-first"] == .noInstruction && problem["two-humans"] == .badTurns)
        #expect(r.examples.map(\.id) == ["good", "text-only", "tag-at-end"])
        #expect(r.count(.textOnly) == 1 && r.examples[1].isTextOnly && r.imageFormats == ["png", "none", "png"])
        #expect(r.examples[1].image.pixel(0, 0) == ImageFit.llavaMean)
        #expect(r.examples[2].instruction == "what colour is it?" && r.count(.droppedTrailingTurn) == 1)
        #expect(r.text.contains("rejected 'escape': image path leaves the images folder: \"../../etc/passwd\" is outside"))
    }

    @Test func brokenJSONSaysWhere() throws {
        let f = try LLaVAFixture("badjson")
        defer { f.cleanup() }
        var bytes = Array(#"[{"id": "a", "conversations": [{"from": "human", "value": "caf"#.utf8)
        let offset = bytes.count
        bytes += [0xE9]   // Latin-1 é: not UTF-8
        bytes += Array(#""}]}]"#.utf8)
        try Data(bytes).write(to: URL(fileURLWithPath: f.dir + "/latin1.json"))
        do { _ = try LLaVAJSON.readRecords(json: f.dir + "/latin1.json"); Issue.record("expected a UTF-8 error") }
        catch { #expect("\(error)".contains("byte offset \(offset)") && "\(error)".contains("latin1.json"), "\(error)") }
        let good = LLaVAFixture.record("a", image: nil, turns: [("q", "a")])
        try Data(("[" + good + ", " + good.prefix(30)).utf8).write(to: URL(fileURLWithPath: f.dir + "/cut.json"))
        do { _ = try LLaVAJSON.readRecords(json: f.dir + "/cut.json"); Issue.record("expected a JSON error") }
        catch { #expect("\(error)".contains("cut.json") && "\(error)".contains("truncated"), "\(error)") }
    }

    func spec(_ f: LLaVAFixture, _ tasks: [(String, String, MetricKind?)]) -> ScenarioBuildSpec {
        var s = ScenarioBuildSpec(tasks: tasks.map { .init(task: $0.0, file: $0.1, metric: $0.2) }, images: f.images)
        s.seed = 3
        return s
    }

    @Test func duplicateIdsAcrossFilesEmptyTasksAndTooFewRecordsAreRefused() throws {
        let f = try LLaVAFixture("refuse")
        defer { f.cleanup() }
        let a = try f.task("alpha", 12)
        let dup = try f.json("dup.json", [LLaVAFixture.record("alpha-3", image: try f.image(3), turns: [("q?", "pink")]),
                                           LLaVAFixture.record("beta-1", image: try f.image(4), turns: [("q?", "pink")])])
        var s = spec(f, [("alpha", a, nil), ("beta", dup, .vqaAccuracy)])
        s.clientsPerTask = 1
        s.testFraction = 0.3
        s.pretrainFraction = 0
        s.pretrain = [try f.json("pre.json", [LLaVAFixture.record("p1", image: try f.image(9), turns: [("q?", "teal")])])]
        do { _ = try ScenarioBuilder.build(s); Issue.record("beta has one record: fewer than... expected a refusal") }
        catch { #expect("\(error)".contains("beta"), "\(error)") }
        // The duplicate is named with both files.
        var r = LLaVAJSON.ImportReport()
        var imp = try RecordImporter(images: f.images, options: .init())
        try imp.importFile(json: a, task: .vqa, into: &r)
        try imp.importFile(json: dup, task: .vqa, into: &r)
        #expect(r.problems.count == 1 && r.problems[0].0 == .duplicateID && r.problems[0].1.detail.contains("alpha.json") && r.problems[0].1.detail.contains("dup.json"))
        // An empty task.
        let empty = try f.json("empty.json", [])
        do { _ = try ScenarioBuilder.build(spec(f, [("alpha", a, nil), ("nothing", empty, nil)])); Issue.record("expected an empty-task error") }
        catch { #expect("\(error)".contains("task 'nothing' has no valid record"), "\(error)") }
        // Fewer training records than clients.
        var few = spec(f, [("alpha", a, nil)])
        few.clientsPerTask = 20
        do { _ = try ScenarioBuilder.build(few); Issue.record("expected a too-few-records error") }
        catch { #expect("\(error)".contains("fewer than its 20 clients"), "\(error)") }
    }

    @Test func buildsDisjointDeterministicSplitsWithTheDatasOwnWords() throws {
        let f = try LLaVAFixture("build")
        defer { f.cleanup() }
        var s = spec(f, [("colours", try f.task("colours", 40), .vqaAccuracy), ("shapes", try f.task("shapes", 30, first: 100), .anls)])
        s.split = .dirichlet(alpha: 0.5)
        s.evalTurn = .all
        let b = try ScenarioBuilder.build(s)
        #expect(b.clients.count == 6 && b.tasks.map(\.metric) == [.vqaAccuracy, .anls])
        let clientIDs = b.clients.flatMap(\.examples).map(\.id)
        let testIDs = b.tasks.flatMap { b.tests[$0]!.examples.map { $0.id.components(separatedBy: "#")[0] } }
        let preIDs = b.pretrain.examples.map(\.id)
        #expect(Set(clientIDs).count == clientIDs.count)
        #expect(Set(clientIDs).isDisjoint(with: testIDs) && Set(clientIDs).isDisjoint(with: preIDs) && Set(testIDs).isDisjoint(with: preIDs))
        #expect(clientIDs.count + Set(testIDs).count + preIDs.count == 70)
        // Every gpt turn of a test record is an item with --eval-turn all.
        let multi = b.tests[b.tasks[0]]!.examples.filter { $0.evalTurn == 1 }
        #expect(!multi.isEmpty && multi.allSatisfy { $0.id.hasSuffix("#2") && $0.references == [$0.followUps[0].gpt] })
        // Nothing is <unk>: "orange", "pink", "hexagon", "colour" are words of the data.
        #expect(b.droppedWords.isEmpty)
        for w in ["orange", "pink", "hexagon", "colour", "maroon"] { #expect(b.tokenizer.id(of: w) != nil, "\(w)") }
        #expect(b.summary.contains("client 0 colours-0"))
        // Same inputs and seed: the same bytes.
        try ScenarioBuilder.write(b, to: f.dir + "/out1")
        try ScenarioBuilder.write(try ScenarioBuilder.build(s), to: f.dir + "/out2")
        let files = try FileManager.default.subpathsOfDirectory(atPath: f.dir + "/out1").sorted()
        #expect(files.contains("scenario.json") && files.contains("clients/client-05.h5") && files.contains("test/shapes.h5"))
        for file in files where !file.hasSuffix("/") {
            var isDir: ObjCBool = false
            if !FileManager.default.fileExists(atPath: f.dir + "/out1/" + file, isDirectory: &isDir) || isDir.boolValue { continue }
            #expect(FileManager.default.contents(atPath: f.dir + "/out1/" + file) == FileManager.default.contents(atPath: f.dir + "/out2/" + file), "\(file) differs")
        }
        #expect(throws: (any Error).self) { try ScenarioBuilder.write(b, to: f.dir + "/out1") }   // refuses to overwrite
        try ScenarioBuilder.write(b, to: f.dir + "/out1", replace: true)
        // The trainer's view of it.
        let d = try ScenarioDirectory(path: f.dir + "/out1")
        #expect(d.tasks == b.tasks && d.clientCount == 6 && d.scenario.rawValue == "custom")
        #expect(try d.test(b.tasks[1]).examples == b.tests[b.tasks[1]]!.examples)
        #expect(try d.tokenizer() == b.tokenizer)
        #expect(try d.pretrain().examples.count == b.pretrain.examples.count)
        // A different seed gives other splits.
        var other = s
        other.seed = 4
        #expect(try ScenarioBuilder.build(other).clients.map { $0.examples.map(\.id) } != b.clients.map { $0.examples.map(\.id) })
    }

    @Test func clientsFileSplitsByOwner() throws {
        let f = try LLaVAFixture("owners")
        defer { f.cleanup() }
        var s = spec(f, [("colours", try f.task("colours", 20), nil)])
        s.testFraction = 0.25
        s.pretrainFraction = 0.1
        var map: [String: String] = [:]
        for i in 0..<20 { map["colours-\(i)"] = i < 8 ? "hospital-a" : "hospital-b" }
        try JSONSerialization.data(withJSONObject: map).write(to: URL(fileURLWithPath: f.dir + "/owners.json"))
        s.clientsFile = f.dir + "/owners.json"
        let b = try ScenarioBuilder.build(s)
        #expect(b.clientNames == ["hospital-a", "hospital-b"])
        #expect(b.clients[0].examples.allSatisfy { Int($0.id.split(separator: "-")[1])! < 8 })
        map.removeValue(forKey: "colours-19")
        map.removeValue(forKey: "colours-18")
        try JSONSerialization.data(withJSONObject: map).write(to: URL(fileURLWithPath: f.dir + "/owners.json"))
        let train = Set(b.clients.flatMap(\.examples).map(\.id))
        if train.contains("colours-19") || train.contains("colours-18") {
            do { _ = try ScenarioBuilder.build(s); Issue.record("expected unmapped records to be refused") }
            catch { #expect("\(error)".contains("have no client"), "\(error)") }
        }
    }

    /// Export a generated benchmark to LLaVA JSON, build a scenario from it: the shards hold the same examples.
    @Test func exportThenScenarioGivesBackTheBenchmark() throws {
        let f = try LLaVAFixture("roundtrip")
        defer { f.cleanup() }
        let g = try ScenarioGenerator.generate(try ScenarioConfig(scenario: .vu, seed: 8, size: .tiny))
        var s = ScenarioBuildSpec(tasks: [], images: f.dir + "/x/images")
        var owners: [String: String] = [:]
        for (k, c) in g.clients.enumerated() {
            try LLaVAJSON.export(c.examples, to: f.dir + "/x", jsonName: "client\(k).json")
            s.tasks.append(.init(task: c.metadata.task, file: f.dir + "/x/client\(k).json"))
            for e in c.examples { owners[e.id] = "client-\(k)" }
        }
        for t in Scenario.vu.tasks {
            try LLaVAJSON.export(g.tests[t]!.examples, to: f.dir + "/x", jsonName: "test-\(t.rawValue).json")
            s.tests.append(.init(task: t.rawValue, file: f.dir + "/x/test-\(t.rawValue).json"))
        }
        try LLaVAJSON.export(g.pretrain.examples, to: f.dir + "/x", jsonName: "pretrain.json")
        s.pretrain = [f.dir + "/x/pretrain.json"]
        try JSONSerialization.data(withJSONObject: owners).write(to: URL(fileURLWithPath: f.dir + "/owners.json"))
        s.clientsFile = f.dir + "/owners.json"
        let b = try ScenarioBuilder.build(s)
        #expect(b.tasks == Scenario.vu.tasks)
        #expect(b.clients.map(\.examples) == g.clients.map(\.examples))
        for t in Scenario.vu.tasks { #expect(b.tests[t]!.examples == g.tests[t]!.examples) }
        func content(_ e: Example) -> [String] { [e.id, e.imageID, e.instruction, e.answer] + e.references }
        #expect(b.pretrain.examples.map(content) == g.pretrain.examples.map(content))
        #expect(b.pretrain.examples.map(\.image) == g.pretrain.examples.map(\.image))
        #expect(b.droppedWords.isEmpty)
    }
}
