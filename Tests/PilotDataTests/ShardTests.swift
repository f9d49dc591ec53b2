import Foundation
import PilotData
import Testing

func temporaryDirectory(_ label: String) throws -> String {
    let dir = NSTemporaryDirectory() + "pilot-data-\(label)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}

func filesUnder(_ dir: String) throws -> [String] {
    let e = FileManager.default.enumerator(atPath: dir)!
    var out: [String] = []
    while let p = e.nextObject() as? String {
        var isDir: ObjCBool = false
        FileManager.default.fileExists(atPath: dir + "/" + p, isDirectory: &isDir)
        if !isDir.boolValue { out.append(p) }
    }
    return out.sorted()
}

@Suite struct ShardTests {
    @Test func scenarioDirectoryRoundTrips() throws {
        let dir = try temporaryDirectory("roundtrip")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let s = try ScenarioGenerator.generate(try ScenarioConfig(scenario: .gvqa, seed: 11, size: .tiny))
        try ScenarioGenerator.write(s, to: dir)
        #expect(try filesUnder(dir) == ["clients/client-00.h5", "clients/client-01.h5", "clients/client-02.h5", "clients/client-03.h5",
                                       "clients/client-04.h5", "clients/client-05.h5", "clients/client-06.h5", "clients/client-07.h5",
                                       "clients/client-08.h5", "pretrain.h5", "scenario.json", "test/ocr.h5", "test/science.h5",
                                       "test/vqa.h5", "tokenizer.h5"])
        let d = try ScenarioDirectory(path: dir)
        #expect(d.scenario == .gvqa && d.clientCount == 9 && d.clientTasks[4] == .vqa)
        for k in 0..<9 { #expect(try d.client(k) == s.clients[k]) }
        for t in Scenario.gvqa.tasks { #expect(try d.test(t) == s.tests[t]!) }
        #expect(try d.pretrain() == s.pretrain)
        #expect(try d.tokenizer() == s.tokenizer)
    }

    @Test func sameSeedGivesByteIdenticalFiles() throws {
        let a = try temporaryDirectory("det-a"), b = try temporaryDirectory("det-b"), c = try temporaryDirectory("det-c")
        defer { for d in [a, b, c] { try? FileManager.default.removeItem(atPath: d) } }
        let cfg = try ScenarioConfig(scenario: .vu, seed: 42, size: .tiny)
        try ScenarioGenerator.write(try ScenarioGenerator.generate(cfg), to: a)
        try ScenarioGenerator.write(try ScenarioGenerator.generate(cfg), to: b)
        var other = cfg
        other.seed = 43
        try ScenarioGenerator.write(try ScenarioGenerator.generate(other), to: c)
        let files = try filesUnder(a)
        #expect(files == (try filesUnder(b)))
        #expect(FileManager.default.contents(atPath: a + "/scenario.json") == FileManager.default.contents(atPath: b + "/scenario.json"))
        for f in files {
            let x = FileManager.default.contents(atPath: a + "/" + f), y = FileManager.default.contents(atPath: b + "/" + f)
            #expect(x == y, "\(f) differs between two runs with the same seed")
        }
        for f in files where f.hasPrefix("clients/") || f.hasPrefix("test/") {
            #expect(FileManager.default.contents(atPath: a + "/" + f) != FileManager.default.contents(atPath: c + "/" + f),
                    "\(f) is the same for seeds 42 and 43")
        }
    }

    @Test func readingAMissingOrForeignFileNamesIt() throws {
        let dir = try temporaryDirectory("errors")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        do { _ = try Shard.read(path: dir + "/nope.h5"); Issue.record("expected an error") }
        catch { #expect("\(error)".contains("nope.h5")) }
        let tok = try Tokenizer(tokens: Tokenizer.specials)
        try tok.save(path: dir + "/tok.h5")
        do { _ = try Shard.read(path: dir + "/tok.h5"); Issue.record("expected an error") }
        catch { #expect("\(error)".contains("not a FedMIT shard")) }
    }
}

@Suite struct DeterminismAcrossSeconds {
    /// Writes the same scenario twice, more than a second apart: HDF5 would record object
    /// modification times unless the store turns them off, so this catches time stamps.
    @Test func sameSeedAcrossSecondsGivesByteIdenticalFiles() throws {
        let a = try temporaryDirectory("sec-a"), b = try temporaryDirectory("sec-b")
        defer { for d in [a, b] { try? FileManager.default.removeItem(atPath: d) } }
        let cfg = try ScenarioConfig(scenario: .gvqa, seed: 8, size: .tiny, perClient: 4, testPerTask: 4, pretrainCount: 10)
        try ScenarioGenerator.write(try ScenarioGenerator.generate(cfg), to: a)
        Thread.sleep(forTimeInterval: 1.1)
        try ScenarioGenerator.write(try ScenarioGenerator.generate(cfg), to: b)
        let da = try ScenarioDirectory(path: a), db = try ScenarioDirectory(path: b)
        for k in 0..<9 { #expect(try da.client(k) == db.client(k)) }
        for t in da.tasks { #expect(try da.test(t) == db.test(t)) }
        #expect(try da.pretrain() == db.pretrain() && da.tokenizer() == db.tokenizer())
        let differing = try filesUnder(a).filter { FileManager.default.contents(atPath: a + "/" + $0) != FileManager.default.contents(atPath: b + "/" + $0) }
        #expect(differing.isEmpty, "files differ: \(differing)")
    }
}
