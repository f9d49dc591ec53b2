import Foundation
import PilotHDF5
import PilotLM
import PilotTestSupport
import Testing

/// The imported SmolLM2-135M-Instruct directory (scripts/get_smollm2.sh; PILOT_SMOLLM2 overrides), or nil.
let importedSmolLM2: String? = {
    let p = ProcessInfo.processInfo.environment["PILOT_SMOLLM2"] ?? (repositoryRoot + "/models/smollm2-135m-instruct")
    return FileManager.default.fileExists(atPath: p + "/config.json") ? p : nil
}()

/// Pilot and every baseline on SmolLM2-135M-Instruct (frozen) under mpirun, with the shipped
/// configs/tiny-smollm2: a base pretrained on the LM that refers to it, LoRA on the real LM, resume
/// bit for bit, `pilot eval` reproducing the run's score, and the LM checks that refuse a wrong or
/// missing model before any training. Needs the model that scripts/get_smollm2.sh imports.
@Suite("Federated runs on SmolLM2", .serialized, .enabled(if: importedSmolLM2 != nil))
struct SmolLM2RunTests {
    static var lm: String? { importedSmolLM2 }

    /// 3 clients (one per vu task) of 8 examples and a base pretrained for 2 steps on the frozen LM.
    static let fixture: TemporaryDirectory = {
        let dir = TemporaryDirectory("smollm2-run")
        let gen = try! runProcess(pilotBinary, ["data", "generate", "--scenario", "vu", "--size", "tiny", "--clients-per-task", "1",
                                                "--per-client", "8", "--test-size", "4", "--seed", "3", "--out", dir.file("data")])
        precondition(gen.status == 0, "data generate failed: \(gen.stderr)")
        let pre = try! runProcess(pilotBinary, ["pretrain", "--data", dir.file("data"), "--lm", lm!, "--out", dir.file("base.h5"),
                                                "--steps", "2", "--batch", "2", "--text-length", "64"], timeout: 300)
        precondition(pre.status == 0, "pretrain failed: \(pre.stdout) \(pre.stderr)")
        return dir
    }()

    /// The shipped config with the fixture's data, base and LM, and `rounds` rounds.
    static func config(_ algorithm: String, rounds: Int, lm lmPath: String? = nil, base: String? = nil,
                       in dir: TemporaryDirectory) throws -> String {
        var text = try String(contentsOfFile: repositoryRoot + "/configs/tiny-smollm2/\(algorithm).toml", encoding: .utf8)
        func set(_ key: String, _ value: String) {
            let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map { line -> String in
                line.hasPrefix(key + " =") ? "\(key) = \(value)" : String(line)
            }
            text = lines.joined(separator: "\n")
        }
        set("data", "\"\(fixture.file("data"))\"")
        set("base", "\"\(base ?? fixture.file("base.h5"))\"")
        set("lm", "\"\(lmPath ?? lm!)\"")
        set("rounds", "\(rounds)")
        let path = dir.file("\(algorithm).toml")
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    static func train(_ args: [String]) throws -> ProcessResult {
        try runProcess(mpirunPath, mpirunArguments(np: 4) + [pilotBinary, "train"] + args, timeout: 600)
    }

    /// Resumes `dir`/cut (stopped after round 1) and checks its round 2 equals `dir`/full's bit for bit; returns full's datasets.
    static func resumeAndCompare(_ dir: TemporaryDirectory) throws -> [String: [Float]] {
        let resumed = try train(["--resume", dir.file("cut")])
        try #require(resumed.status == 0, "resume: \(resumed.stderr)")
        let a = try TrainCLITests.finalRoundDatasets(dir.file("full"), round: 2)
        let b = try TrainCLITests.finalRoundDatasets(dir.file("cut"), round: 2)
        #expect(!a.isEmpty && a.count == b.count)
        for (k, v) in a { #expect(b[k] == v, "\(k) differs after resume") }
        return a
    }

    /// `pilot eval` of client 1 at round 2 of `dir`/full: the score it prints (nil if none).
    static func evalClient1(_ dir: TemporaryDirectory) throws -> Double? {
        let ev = try runProcess(pilotBinary, ["eval", "--run", dir.file("full"), "--client", "1", "--round", "2",
                                              "--max-examples", "2", "--max-new-tokens", "4"], timeout: 300)
        #expect(ev.status == 0, "eval: \(ev.stderr)")
        return Double(ev.stdout.split(separator: "=").last?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "")
    }

    @Test("the base refers to the LM (path and SHA-256) and holds only the vision encoder and the connector")
    func baseRefersToTheLM() throws {
        let f = try H5File.open(Self.fixture.file("base.h5"))
        defer { f.close() }
        let paths = try f.datasetPaths()
        #expect(paths.contains { $0.hasPrefix("/vision/") || $0.hasPrefix("vision/") })
        #expect(paths.contains { $0.contains("connector/mlp/") })
        #expect(!paths.contains { $0.contains("lm/") || $0.contains("tokenizer") }, "\(paths)")
        let config = try #require(try f.attribute("model_config")?.stringValue)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(config.utf8)) as? [String: Any])
        let ref = try #require(json["lm"] as? [String: Any])
        #expect((ref["sha256"] as? String)?.count == 64 && json["width"] as? Int == 576 && json["vocab_size"] as? Int == 49152)
        #expect((json["visual_position"] as? Int ?? 0) > 10, "the image sits after the system turn and the user tag")

        // pilot eval --base scores the model every client starts from (pretrained connector, no LoRA)
        let dir = TemporaryDirectory(); defer { dir.cleanup() }
        let ev = try runProcess(pilotBinary, ["eval", "--base", Self.fixture.file("base.h5"), "--data", Self.fixture.file("data"),
                                              "--task", "vqa", "--max-examples", "2", "--max-new-tokens", "4",
                                              "--predictions", dir.file("p.json")], timeout: 300)
        #expect(ev.status == 0 && ev.stdout.contains("on 2 vqa examples: exactMatch = "), "\(ev.stdout) \(ev.stderr)")
        let predictions = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir.file("p.json")))) as? [String: String]
        #expect(predictions?.count == 2)
        let both = try runProcess(pilotBinary, ["eval", "--base", Self.fixture.file("base.h5"), "--run", dir.path, "--client", "0"])
        #expect(both.status != 0 && both.stderr.contains("leave out --run"), "\(both.stderr)")
    }

    @Test("pilot: two rounds, resume bit for bit, pilot eval reproduces the stored score")
    func pilotResumesBitwise() throws {
        let dir = TemporaryDirectory(); defer { dir.cleanup() }
        let cfg = try Self.config("pilot", rounds: 2, in: dir)
        let full = try Self.train(["--config", cfg, "--out", dir.file("full")])
        try #require(full.status == 0, "train: \(full.stdout)\n\(full.stderr)")
        #expect(full.stdout.contains("round 2/2 stage 2"), "\(full.stdout)")
        let cut = try Self.train(["--config", cfg, "--out", dir.file("cut"), "--stop-after-round", "1"])
        #expect(cut.status != 0)
        let a = try Self.resumeAndCompare(dir)
        #expect(a.keys.contains { $0.contains("lora_b") } && a.keys.contains { $0.contains("task_adapters") })
        #expect(!a.keys.contains { $0.contains("self_attn") || $0.hasSuffix("/attn/q/weight") }, "no LM weight is checkpointed")

        let printed = try Self.evalClient1(dir)
        let stored = try H5File.open(dir.file("full/metrics.h5")).read(Double.self, at: "clients/eval_score").values[1 * 3 + 1]
        #expect(printed.map { abs($0 - stored) <= 5e-7 } == true, "eval prints six decimals; it printed \(String(describing: printed)), metrics.h5 has \(stored)")

        // pilot export peft: the client's LoRA in peft's layout, equal to its checkpointed state; the
        // connector and vision encoder beside it; pilot generate --adapter uses it.
        let out = dir.file("export-client-1")
        let exp = try runProcess(pilotBinary, ["export", "peft", "--run", dir.file("full"), "--client", "1", "--out", out], timeout: 300)
        try #require(exp.status == 0, "export: \(exp.stderr)")
        for f in ["adapter_config.json", "adapter_model.safetensors", "connector.safetensors", "vision.safetensors", "multimodal_config.json", "README.md"] {
            #expect(FileManager.default.fileExists(atPath: out + "/" + f), "\(f) missing")
        }
        let adapter = try PEFTAdapter.read(directory: out)
        #expect(adapter.rank == 4 && adapter.targets.map(\.rawValue) == ["q", "v", "down"] && adapter.layers == 30)
        let state = try H5File.open(dir.file("full/ckpt/round_002/client_01.h5"))
        for name in ["lm/layers/0/attn/q/lora_a", "lm/layers/29/mlp/down/lora_b", "lm/layers/7/attn/v/lora_b"] {
            let stored = try state.read(Float.self, at: "/state/" + name)
            // round checkpoints hold each client's state flat; the export has the parameter's [in, r] / [r, out]
            let shape = adapter[name]?.shape ?? []
            #expect(adapter[name]?.values == stored.values && shape.reduce(1, *) == stored.values.count && shape.contains(4),
                    "\(name): export \(adapter[name]?.shape ?? []) vs checkpoint \(stored.shape)")
        }
        let connector = try SafetensorsFile(path: out + "/connector.safetensors")
        #expect(connector.tensorInfos.contains { $0.name.hasPrefix("connector.task_adapters.1.fc1.weight") })
        let again = try runProcess(pilotBinary, ["export", "peft", "--run", dir.file("full"), "--client", "1", "--out", out])
        #expect(again.status != 0 && again.stderr.contains("--force"), "an existing export is not overwritten silently")
        let gen = try runProcess(pilotBinary, ["generate", "--model", Self.lm!, "--adapter", out, "--prompt", "What colour is the sky?",
                                               "--max-new-tokens", "4"], timeout: 300)
        #expect(gen.status == 0 && !gen.stdout.isEmpty, "generate --adapter: \(gen.stderr)")
    }

    /// #33 item 2: the frozen LM in q8 through a whole run: the node's prepared copy is in q8, the run resumes
    /// bit for bit, metrics.h5 says which dtype, `pilot eval` rebuilds the client on the run's dtype (its
    /// score is the stored one), and a resume with another dtype is refused naming both.
    @Test("pilot on a q8 base: prepared in q8, resume bit for bit, eval reproduces the score, another dtype refused on resume")
    func q8BaseRun() throws {
        let dir = TemporaryDirectory(); defer { dir.cleanup() }
        let base = try Self.config("pilot", rounds: 2, in: dir)
        let text = try String(contentsOfFile: base, encoding: .utf8)
            .replacingOccurrences(of: "[model]\n", with: "[model]\nbase_dtype = \"q8\"\nweights_cache = \"\(dir.file("cache"))\"\n")
        let cfg = dir.file("q8.toml"), bf16 = dir.file("bf16.toml")
        try text.write(toFile: cfg, atomically: true, encoding: .utf8)
        try text.replacingOccurrences(of: "base_dtype = \"q8\"", with: "base_dtype = \"bf16\"").write(toFile: bf16, atomically: true, encoding: .utf8)
        let full = try Self.train(["--config", cfg, "--out", dir.file("full")])
        try #require(full.status == 0, "train: \(full.stdout)\n\(full.stderr)")
        let cache = try FileManager.default.contentsOfDirectory(atPath: dir.file("cache"))
        #expect(cache.count == 1 && cache[0].hasSuffix("-q8.pilotw"), "\(cache)")
        let size = try FileManager.default.attributesOfItem(atPath: dir.file("cache/" + cache[0]))[.size] as? Int ?? 0
        #expect(size > 100_000_000 && size < 160_000_000, "134.5M parameters in q8 take about 143 MB, not \(size)")
        let metrics = try H5File.open(dir.file("full/metrics.h5"))
        #expect(try metrics.attribute("base_dtype")?.stringValue == "q8")
        let cut = try Self.train(["--config", cfg, "--out", dir.file("cut"), "--stop-after-round", "1"])
        #expect(cut.status != 0)
        let refused = try Self.train(["--resume", dir.file("cut"), "--config", bf16])
        #expect(refused.status != 0 && refused.stderr.contains("model.base_dtype: \"q8\" → \"bf16\""), "\(refused.stderr)")
        let a = try Self.resumeAndCompare(dir)
        let printed = try Self.evalClient1(dir)
        let stored = try metrics.read(Double.self, at: "clients/eval_score").values[1 * 3 + 1]
        #expect(printed.map { abs($0 - stored) <= 5e-7 } == true, "eval printed \(String(describing: printed)), metrics.h5 has \(stored)")
    }

    @Test("a CLIP tower as the vision encoder: pretrain refers to it, pilot trains two rounds, export names it, a changed tower is refused")
    func clipTowerRun() throws {
        let dir = TemporaryDirectory(); defer { dir.cleanup() }
        let tower = dir.file("tower")
        try FileManager.default.copyItem(atPath: CLIPFixture.path("vit-quickgelu"), toPath: tower)
        let pre = try runProcess(pilotBinary, ["pretrain", "--data", Self.fixture.file("data"), "--lm", Self.lm!, "--vision-tower", tower,
                                               "--out", dir.file("base.h5"), "--steps", "2", "--batch", "2", "--text-length", "64"], timeout: 300)
        try #require(pre.status == 0, "pretrain: \(pre.stdout)\n\(pre.stderr)")
        #expect(pre.stdout.contains("vision encoder = the CLIP tower") && pre.stdout.contains("hidden_states[-2]"), "\(pre.stdout)")
        let f = try H5File.open(dir.file("base.h5"))
        let paths = try f.datasetPaths()
        let config = try #require(try f.attribute("model_config")?.stringValue)
        f.close()
        #expect(!paths.contains { $0.contains("vision/") } && paths.contains { $0.contains("connector/mlp/") }, "\(paths)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(config.utf8)) as? [String: Any])
        let ref = try #require(json["vision_tower"] as? [String: Any])
        #expect(ref["path"] as? String == tower && (ref["sha256"] as? String)?.count == 64 && ref["feature_layer"] as? Int == -2)
        #expect(json["vision_width"] as? Int == 64 && json["image_size"] as? Int == 32)

        let cfg = try Self.config("pilot", rounds: 2, base: dir.file("base.h5"), in: dir)
        let run = try Self.train(["--config", cfg, "--out", dir.file("run")])
        try #require(run.status == 0, "train: \(run.stdout)\n\(run.stderr)")
        #expect(run.stdout.contains("round 2/2 stage 2"), "\(run.stdout)")
        let scores = try H5File.open(dir.file("run/metrics.h5")).read(Double.self, at: "clients/eval_score").values
        #expect(scores.count == 6 && scores.allSatisfy(\.isFinite), "\(scores)")

        let out = dir.file("export")
        let exp = try runProcess(pilotBinary, ["export", "peft", "--run", dir.file("run"), "--client", "0", "--out", out], timeout: 300)
        try #require(exp.status == 0, "export: \(exp.stderr)")
        #expect(!FileManager.default.fileExists(atPath: out + "/vision.safetensors"), "the tower is not copied into the export")
        let readme = try String(contentsOfFile: out + "/README.md", encoding: .utf8)
        #expect(readme.contains("CLIP vision tower at `\(tower)`") && readme.contains("vision_feature_layer` = -2"), "\(readme)")

        // the tower's files change after pretraining: every client rank refuses before training
        let h = FileHandle(forWritingAtPath: tower + "/config.json")!
        h.seekToEndOfFile(); h.write(Data(" ".utf8)); try h.close()
        let changed = try Self.train(["--config", cfg, "--out", dir.file("changed")])
        #expect(changed.status != 0)
        let text = changed.stdout + changed.stderr
        // the same reason on every client rank: printed once, naming the ranks
        #expect(text.components(separatedBy: "the tower's directory changed").count - 1 == 1, "printed once: \(text)")
        #expect(text.contains("rank 1 (client 0), rank 2 (client 1), rank 3 (client 2), each with:"), "\(text)")
        #expect(!FileManager.default.fileExists(atPath: dir.file("changed/ckpt/latest")))
    }

    @Test("every baseline runs a round on the LM", arguments: ["local", "centralized", "fedavg", "fedprox", "fedadam", "shepherd", "feddpa"])
    func baselinesRun(_ algorithm: String) throws {
        let dir = TemporaryDirectory(); defer { dir.cleanup() }
        let cfg = try Self.config(algorithm, rounds: 1, in: dir)
        let r = try Self.train(["--config", cfg, "--out", dir.file("run")])
        #expect(r.status == 0, "\(algorithm): \(r.stdout)\n\(r.stderr)")
        let scores = try H5File.open(dir.file("run/metrics.h5")).read(Double.self, at: "clients/eval_score").values
        #expect(scores.count == 3 && scores.allSatisfy(\.isFinite), "\(scores)")
        let loss = try H5File.open(dir.file("run/metrics.h5")).read(Double.self, at: "clients/loss_ce").values
        #expect(loss.allSatisfy { $0 > 0 && $0.isFinite }, "\(loss)")
    }

    @Test("a changed or missing LM is refused before training, once, naming the ranks")
    func wrongLMIsRefused() throws {
        let dir = TemporaryDirectory(); defer { dir.cleanup() }
        // a copy of the LM with one file changed
        let copy = dir.file("lm-copy")
        try FileManager.default.createDirectory(atPath: copy, withIntermediateDirectories: true)
        for f in try FileManager.default.contentsOfDirectory(atPath: Self.lm!) where !f.hasPrefix(".") {
            try FileManager.default.createSymbolicLink(atPath: copy + "/" + f, withDestinationPath: Self.lm! + "/" + f)
        }
        try FileManager.default.removeItem(atPath: copy + "/config.json")
        var cfgText = try String(contentsOfFile: Self.lm! + "/config.json", encoding: .utf8)
        cfgText += " "
        try cfgText.write(toFile: copy + "/config.json", atomically: true, encoding: .utf8)
        let changed = try Self.train(["--config", try Self.config("fedavg", rounds: 1, lm: copy, in: dir), "--out", dir.file("changed")])
        #expect(changed.status != 0)
        let text = changed.stdout + changed.stderr
        #expect(text.contains("rank 1 (client 0)") && text.contains("hash") && text.contains("changed"), "\(text)")
        #expect(text.components(separatedBy: "the model directory changed").count - 1 == 1, "the same reason on every client rank, printed once: \(text)")
        #expect(text.contains("rank 1 (client 0), rank 2 (client 1), rank 3 (client 2), each with:"), "\(text)")
        let missing = try Self.train(["--config", try Self.config("fedavg", rounds: 1, lm: dir.file("nowhere"), in: dir), "--out", dir.file("missing")])
        #expect(missing.status != 0)
        #expect((missing.stdout + missing.stderr).contains("does not exist on this machine"), "\(missing.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir.file("missing/ckpt/latest")))
    }
}
