import Foundation
import Testing
import PilotCore
import PilotLM
import PilotModel
import PilotTestSupport

/// The PEFT adapter of Tests/Fixtures/lm/peft-gqa-tied (Tests/Fixtures/lm/make_peft_fixture.py: peft's save_pretrained of
/// random nonzero LoRA on the tiny-gqa-tied model) and transformers+peft's logits through it.
struct PEFTFixture {
    static let dir = LMFixtures.path("peft-gqa-tied")
    static let adapter = dir + "/adapter"
    static let base = LMFixtures.path("tiny-gqa-tied")
    let inputIDs: [[Int32]]
    let logits: [Float]     // [B·T·V]

    init() throws {
        let json = try JSONSerialization.jsonObject(with: try Data(contentsOf: URL(fileURLWithPath: PEFTFixture.dir + "/expected.json")))
        guard let e = json as? [String: Any], let ids = e["input_ids"] as? [[Int]], let lg = e["logits"] as? [[[Double]]] else {
            throw PilotError.message("\(PEFTFixture.dir)/expected.json: unexpected layout")
        }
        inputIDs = ids.map { $0.map(Int32.init) }
        logits = lg.flatMap { $0.flatMap { $0.map(Float.init) } }
    }
}

/// SplitMix64 → uniform floats in [-bound, bound], so a test adapter is the same on every machine.
struct TestRandom {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func uniform(_ bound: Float) -> Float { (Float(next() >> 40) / Float(1 << 24) * 2 - 1) * bound }
}

/// A random nonzero adapter in pilot's own naming for `config` (both A and B nonzero, unlike a fresh LoRA).
func randomAdapter(_ config: LlamaConfig, rank: Int, alpha: Float, targets: [LoRAAdapter.Target] = LoRAAdapter.Target.allCases,
                   seed: UInt64, bound: Float = 0.3) throws -> LoRAAdapter {
    var rng = TestRandom(state: seed)
    return try LoRAAdapter(config: config, rank: rank, alpha: alpha, targets: targets) { _, shape in
        (0..<shape.reduce(1, *)).map { _ in rng.uniform(bound) }
    }
}

@Suite("PEFT LoRA adapters vs transformers+peft", .serialized)
struct PEFTTests {
    @Test("peft's saved adapter, merged into our weights, gives peft's logits to 1e-4")
    func peftAdapterLogits() throws {
        let f = try PEFTFixture()
        let cfg = try PEFTAdapter.readConfig(directory: PEFTFixture.adapter)
        #expect(cfg.rank == 4 && cfg.alpha == 6 && cfg.targets == LoRAAdapter.Target.allCases)
        let model = try LanguageModel.load(directory: PEFTFixture.base, adapter: PEFTFixture.adapter, maxBatch: 2, maxTokens: 16, maxContext: 32)
        let ours = try model.forward(f.inputIDs, cache: model.makeCache(batch: 2))
        let d = maxAbsDiff(ours, f.logits)
        let base = try LanguageModel.load(directory: PEFTFixture.base, maxBatch: 2, maxTokens: 16, maxContext: 32)
        let change = maxAbsDiff(try base.forward(f.inputIDs, cache: base.makeCache(batch: 2)), f.logits)
        print("peft-gqa-tied: max |our adapted logit - peft's| = \(d) over \(f.logits.count) logits (the adapter moves logits by up to \(change))")
        #expect(d <= 1e-4)
        #expect(change > 0.5)
    }

    @Test("our export of peft's adapter holds peft's tensors, reads back equal and gives peft's logits")
    func exportRoundTrip() throws {
        let f = try PEFTFixture()
        let tmp = TemporaryDirectory("peft-export")
        defer { tmp.cleanup() }
        let adapter = try PEFTAdapter.read(directory: PEFTFixture.adapter)
        #expect(adapter.layers == 2 && adapter.scale == 1.5)
        #expect(adapter["lm/layers/1/attn/k/lora_a"]?.shape == [64, 4])   // [in, r]
        #expect(adapter["lm/layers/1/attn/k/lora_b"]?.shape == [4, 32])   // [r, KV·D]
        #expect(adapter["lm/layers/0/mlp/down/lora_a"]?.shape == [128, 4])
        let out = tmp.file("adapter")
        try PEFTExport.write(adapter: adapter, baseModel: PEFTFixture.base, out: out,
                             extraFiles: [.data("README.md", Data(PEFTExport.readme(adapter: adapter, baseModel: "tiny-gqa-tied").utf8))])
        #expect(try String(contentsOfFile: out + "/README.md", encoding: .utf8).contains("r = 4, lora_alpha = 6.0, on q_proj, k_proj"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: out).sorted() == ["README.md", "adapter_config.json", "adapter_model.safetensors"])
        #expect(try FileManager.default.contentsOfDirectory(atPath: tmp.path) == ["adapter"])   // no temp dir left

        // the same tensors under the same names and shapes as peft's own file
        let theirs = try SafetensorsFile(path: PEFTFixture.adapter + "/adapter_model.safetensors")
        let mine = try SafetensorsFile(path: out + "/adapter_model.safetensors")
        #expect(mine.tensorInfos.map(\.name).sorted() == theirs.tensorInfos.map(\.name).sorted())
        #expect(mine.metadata == ["format": "pt"])
        var worst: Float = 0
        for t in theirs.tensorInfos {
            #expect(mine.info(t.name)?.shape == t.shape, "\(t.name)")
            var a = [Float](repeating: 0, count: t.count), b = a
            try a.withUnsafeMutableBufferPointer { try theirs.readFloat32(t.name, into: $0) }
            try b.withUnsafeMutableBufferPointer { try mine.readFloat32(t.name, into: $0) }
            worst = max(worst, maxAbsDiff(a, b))
        }
        #expect(worst == 0)

        // our adapter_config.json means what peft's does
        let cfg = try PEFTAdapter.readConfig(directory: out)
        #expect(cfg == PEFTAdapterConfig(rank: 4, alpha: 6, targets: LoRAAdapter.Target.allCases, baseModelNameOrPath: PEFTFixture.base))
        let back = try PEFTAdapter.read(directory: out)
        #expect(back == adapter)
        let model = try LanguageModel.load(directory: PEFTFixture.base, adapter: out, maxBatch: 2, maxTokens: 16, maxContext: 32)
        let d = maxAbsDiff(try model.forward(f.inputIDs, cache: model.makeCache(batch: 2)), f.logits)
        print("our export of the peft adapter: tensors bit-identical to peft's file; adapted logits vs peft: max diff \(d)")
        #expect(d <= 1e-4)
    }

    @Test("merging and then unmerging gives the base logits back")
    func unmerge() throws {
        let f = try PEFTFixture()
        let model = try LanguageModel.load(directory: PEFTFixture.base, maxBatch: 2, maxTokens: 16, maxContext: 32)
        let before = try model.forward(f.inputIDs, cache: model.makeCache(batch: 2))
        let adapter = try randomAdapter(model.weights!.config, rank: 3, alpha: 5, targets: [.q, .v, .down], seed: 7)
        try model.weights!.merge(adapter)
        let merged = try model.forward(f.inputIDs, cache: model.makeCache(batch: 2))
        try model.weights!.merge(adapter, sign: -1)
        let after = try model.forward(f.inputIDs, cache: model.makeCache(batch: 2))
        print("merge/unmerge: logits moved by \(maxAbsDiff(before, merged)), back to within \(maxAbsDiff(before, after))")
        #expect(maxAbsDiff(before, merged) > 0.1)
        #expect(maxAbsDiff(before, after) <= 1e-5)
    }

    /// The script direction: with PILOT_PEFT_CHECK_DIR set, our export of an adapter made here (in our
    /// naming, not read from peft) and our logits through it are left there for scripts/studies/check_peft_export.py.
    @Test("an adapter made here: export, reload, same logits; files for check_peft_export.py")
    func ownAdapterForScript() throws {
        let f = try PEFTFixture()
        let config = try LlamaConfig.load(directory: PEFTFixture.base)
        let adapter = try randomAdapter(config, rank: 8, alpha: 16, seed: 15)
        let keep = ProcessInfo.processInfo.environment["PILOT_PEFT_CHECK_DIR"]
        let tmp = TemporaryDirectory("peft-own")
        defer { tmp.cleanup() }
        let root = keep ?? tmp.path
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        let out = root + "/tiny-gqa-tied-adapter"
        let merged = try LanguageModel.load(directory: PEFTFixture.base, maxBatch: 2, maxTokens: 16, maxContext: 32)
        try merged.weights!.merge(adapter)
        let ours = try merged.forward(f.inputIDs, cache: merged.makeCache(batch: 2))
        let json = try JSONSerialization.data(withJSONObject: ["input_ids": f.inputIDs.map { $0.map(Int.init) }, "logits": ours.map(Double.init)])
        try PEFTExport.write(adapter: adapter, baseModel: PEFTFixture.base, out: out, force: true,
                             extraFiles: [.data("pilot_logits.json", json)])
        let reloaded = try LanguageModel.load(directory: PEFTFixture.base, adapter: out, maxBatch: 2, maxTokens: 16, maxContext: 32)
        let d = maxAbsDiff(try reloaded.forward(f.inputIDs, cache: reloaded.makeCache(batch: 2)), ours)
        print("own r=8 adapter: export + reload vs merged in memory: max diff \(d)\(keep.map { "; left in \($0)" } ?? "")")
        #expect(d == 0)
    }

    /// The same on SmolLM2-135M (when imported) for the script: r=8 on all 7 projections of 30 layers.
    @Test("SmolLM2: an adapter made here, for check_peft_export.py",
          .enabled(if: LMFixtures.smollm2 != nil && ProcessInfo.processInfo.environment["PILOT_PEFT_CHECK_DIR"] != nil))
    func smollm2ForScript() throws {
        let dir = LMFixtures.smollm2!, root = ProcessInfo.processInfo.environment["PILOT_PEFT_CHECK_DIR"]!
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        let lm = try PretrainedLM(directory: dir)
        let adapter = try randomAdapter(lm.config, rank: 8, alpha: 16, seed: 135, bound: 0.05)
        let ids = [lm.chatPromptIDs([ChatMessage(.user, "What is the capital of France?")])]
        let plain = try lm.decoder(maxTokens: 64, maxContext: 64)
        let base = try plain.forward(ids, cache: plain.makeCache(batch: 1))
        let out = root + "/smollm2-adapter"
        try PEFTExport.write(adapter: adapter, baseModel: dir, out: out, force: true)
        let adapted = try PretrainedLM(directory: dir, adapter: out)
        #expect(adapted.adapterConfig?.rank == 8)
        let decoder = try adapted.decoder(maxTokens: 64, maxContext: 64)
        let ours = try decoder.forward(ids, cache: decoder.makeCache(batch: 1))
        let json = try JSONSerialization.data(withJSONObject: ["input_ids": ids.map { $0.map(Int.init) }, "logits": ours.map(Double.init)])
        try json.write(to: URL(fileURLWithPath: out + "/pilot_logits.json"))
        print("SmolLM2 r=8 adapter: \(ids[0].count) tokens, the adapter moves logits by up to \(maxAbsDiff(base, ours)); left in \(out)")
    }

    @Test("an existing output directory is refused unless force; force replaces it whole")
    func existingOutput() throws {
        let tmp = TemporaryDirectory("peft-exists")
        defer { tmp.cleanup() }
        let adapter = try PEFTAdapter.read(directory: PEFTFixture.adapter)
        let out = tmp.file("out")
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: false)
        try Data("old".utf8).write(to: URL(fileURLWithPath: out + "/stale.txt"))
        let e = errorText { try PEFTExport.write(adapter: adapter, baseModel: PEFTFixture.base, out: out) }
        print("existing dir: \(e ?? "no error")")
        #expect(e?.contains(out) == true && e?.contains("--force") == true)
        #expect(FileManager.default.fileExists(atPath: out + "/stale.txt"))
        try PEFTExport.write(adapter: adapter, baseModel: PEFTFixture.base, out: out, force: true)
        #expect(try FileManager.default.contentsOfDirectory(atPath: out).sorted() == ["adapter_config.json", "adapter_model.safetensors"])
        #expect(try FileManager.default.contentsOfDirectory(atPath: tmp.path) == ["out"])
        // a file in the way is refused even with force; a failing extra file leaves nothing behind
        try Data().write(to: URL(fileURLWithPath: tmp.file("afile")))
        #expect(errorText { try PEFTExport.write(adapter: adapter, baseModel: PEFTFixture.base, out: tmp.file("afile"), force: true) }?.contains("not a directory") == true)
        struct Boom: Error {}
        #expect(errorText { try PEFTExport.write(adapter: adapter, baseModel: PEFTFixture.base, out: tmp.file("new"),
                                                 extraFiles: [.init(name: "x") { _ in throw Boom() }]) } != nil)
        #expect(try FileManager.default.contentsOfDirectory(atPath: tmp.path).sorted() == ["afile", "out"])
    }

    @Test("an adapter for another model is refused by tensor name, before anything is written")
    func wrongModel() throws {
        let tmp = TemporaryDirectory("peft-wrong")
        defer { tmp.cleanup() }
        let adapter = try PEFTAdapter.read(directory: PEFTFixture.adapter)
        // tiny-mha-untied has 4 KV heads, so k_proj is [64, 64] there, not [32, 64]
        let other = LMFixtures.path("tiny-mha-untied")
        let e1 = errorText { try PEFTExport.write(adapter: adapter, baseModel: other, out: tmp.file("x")) }
        print("export for another model: \(e1 ?? "no error")")
        #expect(e1?.contains("lm/layers/0/attn/k/lora_a") == true)
        #expect(!FileManager.default.fileExists(atPath: tmp.file("x")))
        let e2 = errorText { _ = try LanguageModel.load(directory: other, adapter: PEFTFixture.adapter) }
        print("load onto another model: \(e2 ?? "no error")")
        #expect(e2?.contains(PEFTFixture.adapter) == true && e2?.contains("k_proj") == true)
        // a model with fewer layers
        let w = try LlamaWeights(config: { var c = try LlamaConfig.load(directory: PEFTFixture.base); c.numHiddenLayers = 1; return c }())
        #expect(errorText { try w.merge(adapter) }?.contains("2 layers") == true)
    }

    @Test("bad adapter directories get an error naming the file and key or tensor")
    func badAdapters() throws {
        let tmp = TemporaryDirectory("peft-bad")
        defer { tmp.cleanup() }
        let fm = FileManager.default
        let cfgData = try Data(contentsOf: URL(fileURLWithPath: PEFTFixture.adapter + "/adapter_config.json"))
        func variant(_ name: String, config edit: ((inout [String: Any]) -> Void)? = nil, weights: Bool = true) throws -> String {
            let d = tmp.file(name)
            try fm.createDirectory(atPath: d, withIntermediateDirectories: false)
            var o = try JSONSerialization.jsonObject(with: cfgData) as! [String: Any]
            edit?(&o)
            try JSONSerialization.data(withJSONObject: o).write(to: URL(fileURLWithPath: d + "/adapter_config.json"))
            if weights { try fm.copyItem(atPath: PEFTFixture.adapter + "/adapter_model.safetensors", toPath: d + "/adapter_model.safetensors") }
            return d
        }
        let cases: [(String, String, [String])] = [
            ("dora", try variant("dora") { $0["use_dora"] = true }, ["use_dora"]),
            ("rslora", try variant("rslora") { $0["use_rslora"] = true }, ["use_rslora"]),
            ("pattern", try variant("pattern") { $0["rank_pattern"] = ["q_proj": 8] }, ["rank_pattern"]),
            ("ia3", try variant("ia3") { $0["peft_type"] = "IA3" }, ["peft_type", "IA3"]),
            ("regex", try variant("regex") { $0["target_modules"] = ".*proj" }, ["target_modules"]),
            ("lm_head", try variant("lm_head") { $0["target_modules"] = ["q_proj", "lm_head"] }, ["lm_head"]),
            ("fewer targets", try variant("fewer") { $0["target_modules"] = ["q_proj", "k_proj"] }, ["does not list", "target_modules"]),
            ("rank", try variant("rank") { $0["r"] = 8 }, ["lora_A.weight", "[8, in]"]),
            ("no weights", try variant("noweights", weights: false), ["adapter_model.safetensors"]),
            ("no dir", tmp.file("absent"), ["absent", "not a directory"]),
        ]
        for (what, dir, needles) in cases {
            let e = errorText { _ = try PEFTAdapter.read(directory: dir) }
            print("\(what): \(e ?? "no error")")
            #expect(e != nil, "\(what)")
            for n in needles { #expect(e?.contains(n) == true, "\(what): \(n)") }
        }
        // a missing layer: the file keeps layer 1 only
        let d = try variant("gap", weights: false)
        let src = try SafetensorsFile(path: PEFTFixture.adapter + "/adapter_model.safetensors")
        let kept = src.tensorInfos.filter { $0.name.contains("layers.1.") }.map { TensorInfo(name: $0.name, shape: $0.shape, dtype: .f32) }
        try SafetensorsWriter.write(path: d + "/adapter_model.safetensors", tensors: kept) { info, out in try src.readFloat32(info.name, into: out) }
        let e = errorText { _ = try PEFTAdapter.read(directory: d) }
        print("gap: \(e ?? "no error")")
        #expect(e?.contains("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight") == true)
        // an unknown tensor
        let u = try variant("unknown", weights: false)
        try SafetensorsWriter.write(path: u + "/adapter_model.safetensors", tensors: [TensorInfo(name: "base_model.model.lm_head.lora_A.weight", shape: [4, 64], dtype: .f32)]) { _, o in
            for i in 0..<o.count { o[i] = 0 }
        }
        #expect(errorText { _ = try PEFTAdapter.read(directory: u) }?.contains("base_model.model.lm_head.lora_A.weight") == true)
    }

    @Test("LoRAAdapter refuses missing, extra and mis-shaped tensors by name")
    func adapterValidation() throws {
        let config = try LlamaConfig.load(directory: PEFTFixture.base)
        let good = LoRAAdapter.shapes(for: config, rank: 2, targets: [.q, .o]).map {
            LoRAAdapter.Tensor(name: $0.name, shape: $0.shape, values: .init(repeating: 0.1, count: $0.shape.reduce(1, *)))
        }
        #expect(try LoRAAdapter(rank: 2, alpha: 4, targets: [.o, .q], layers: 2, tensors: good.reversed()).targets == [.q, .o])
        #expect(errorText { _ = try LoRAAdapter(rank: 2, alpha: 4, targets: [.q, .o], layers: 2, tensors: Array(good.dropLast())) }?.contains("lm/layers/1/attn/o/lora_b") == true)
        #expect(errorText { _ = try LoRAAdapter(rank: 2, alpha: 4, targets: [.q], layers: 2, tensors: good) }?.contains("lm/layers/0/attn/o/lora_a") == true)
        #expect(errorText { _ = try LoRAAdapter(rank: 3, alpha: 4, targets: [.q, .o], layers: 2, tensors: good) }?.contains("expected [in, 3]") == true)
        var bad = good
        bad[0] = LoRAAdapter.Tensor(name: bad[0].name, shape: bad[0].shape, values: [1])
        #expect(errorText { _ = try LoRAAdapter(rank: 2, alpha: 4, targets: [.q, .o], layers: 2, tensors: bad) }?.contains(bad[0].name) == true)
        #expect(errorText { _ = try LoRAAdapter(rank: 0, alpha: 4, targets: [.q], layers: 2, tensors: []) } != nil)
    }
}
