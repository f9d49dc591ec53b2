import Foundation
import PilotHDF5
import PilotLM
import PilotTestSupport
import Testing

/// The vision-feature cache inside `pilot train` under mpirun, on the tiny transformers CLIP tower
/// (Tests/Fixtures/clip/vit-quickgelu) over the tiny GQA Llama (Tests/Fixtures/lm/tiny-gqa-tied with a
/// byte-level tokenizer): a run that reads the cache has the bits of one that runs the tower in-line, on
/// any placement; a stale or damaged cache is rebuilt and reported, and the run's bits stay the same.
@Suite("vision-feature cache under mpirun", .serialized)
struct VisionCacheCLITests {
    /// 6 clients (2 per vu task) of 6 examples, 4 test examples per task, and a base on the tower and the tiny LM.
    static let fixture: TemporaryDirectory = {
        let dir = TemporaryDirectory("vision-cache-fixture")
        let fm = FileManager.default
        try! fm.createDirectory(atPath: dir.file("lm"), withIntermediateDirectories: false)
        let src = repositoryRoot + "/Tests/Fixtures/lm/tiny-gqa-tied"
        for f in ["config.json", "model.safetensors"] { try! fm.copyItem(atPath: src + "/" + f, toPath: dir.file("lm/" + f)) }
        try! byteTokenizer().tokenizerJSON().write(to: URL(fileURLWithPath: dir.file("lm/tokenizer.json")))
        let template = #"{"chat_template": "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"}"#
        try! Data(template.utf8).write(to: URL(fileURLWithPath: dir.file("lm/tokenizer_config.json")))
        try! fm.copyItem(atPath: CLIPFixture.path("vit-quickgelu"), toPath: dir.file("tower"))
        let gen = try! runProcess(pilotBinary, ["data", "generate", "--scenario", "vu", "--size", "tiny", "--clients-per-task", "2",
                                                "--per-client", "6", "--test-size", "4", "--seed", "3", "--out", dir.file("data")])
        precondition(gen.status == 0, "data generate failed: \(gen.stderr)")
        let pre = try! runProcess(pilotBinary, ["pretrain", "--data", dir.file("data"), "--lm", dir.file("lm"), "--vision-tower", dir.file("tower"),
                                                "--out", dir.file("base.h5"), "--steps", "2", "--batch", "2", "--text-length", "96"], timeout: 300)
        precondition(pre.status == 0, "pretrain failed: \(pre.stdout) \(pre.stderr)")
        return dir
    }()

    /// The tiny LM's 256 ids as a byte-level BPE tokenizer (as PretrainedBaseTests' `tinyByteTokenizer`):
    /// 252 single bytes in GPT-2's alphabet, then <|endoftext|>, <|im_start|>, <|im_end|>, <pad>.
    static func byteTokenizer() throws -> BPETokenizer {
        var chars: [Int: Int] = [:]
        for b in Array(33...126) + Array(161...172) + Array(174...255) { chars[b] = b }
        var n = 0
        for b in 0..<256 where chars[b] == nil { chars[b] = 256 + n; n += 1 }
        let tokens = (0..<252).map { String(UnicodeScalar(UInt32(chars[$0]!))!) } + ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<pad>"]
        return try BPETokenizer(ggufTokens: tokens, merges: [], tokenTypes: [Int](repeating: 1, count: 252) + [3, 3, 3, 3],
                                preTokenizer: "gpt2", bos: 253, eos: 254, unk: nil, pad: 255, addBOS: false, source: "test")
    }

    static func config(_ extra: String = "") -> String {
        """
        [run]
        algorithm = "pilot"
        seed = 5
        rounds = 2
        data = "\(fixture.file("data"))"
        base = "\(fixture.file("base.h5"))"

        [model]
        lm = "\(fixture.file("lm"))"
        lora_rank = 4
        \(extra)

        [train]
        batch_size = 4
        max_steps = 2

        [eval]
        max_examples = 6
        max_new_tokens = 6
        """
    }

    /// The cache files beside the shards, by shard.
    static func caches() throws -> [String] {
        let data = fixture.file("data")
        return try ["clients", "test"].flatMap { sub in
            try FileManager.default.contentsOfDirectory(atPath: data + "/" + sub).filter { $0.contains(".vision-") }.map { sub + "/" + $0 }
        }.sorted()
    }

    @Test("with the cache (built on -np 3, reused and rebuilt on -np 5) a run has the bits of one without it; stale and damaged caches are rebuilt and reported")
    func cachedRunsHaveTheSameBits() throws {
        let dir = TemporaryDirectory(); defer { dir.cleanup() }
        let off = try TrainCLITests.writeConfig(dir, "off.toml", Self.config("cache_vision_features = false"))
        let on = try TrainCLITests.writeConfig(dir, "on.toml", Self.config())

        let plain = try TrainCLITests.train(["--config", off, "--out", dir.file("off")], np: 5)
        try #require(plain.status == 0, "without the cache: \(plain.stdout)\n\(plain.stderr)")
        #expect(plain.stdout.contains("vision features: computed by the CLIP tower in every round (model.cache_vision_features = false)"), "\(plain.stdout)")
        #expect(try Self.caches().isEmpty, "a run without the cache writes none")

        let first = try TrainCLITests.train(["--config", on, "--out", dir.file("on")], np: 3)
        try #require(first.status == 0, "with the cache: \(first.stdout)\n\(first.stderr)")
        for k in 0..<6 { #expect(first.stdout.contains("vision features: client \(k): building the cache (6 images)…"), "\(first.stdout)") }
        for t in ["vqa", "caption", "grounding"] {
            // each test split is built once, by the rank of the task's first client, and opened by the others
            #expect(first.stdout.components(separatedBy: "vision features: test split \(t): building the cache (4 images)…").count == 2, "\(first.stdout)")
        }
        #expect(first.stdout.contains("vision features: read from the cache beside each shard (0 reused, 9 built, 0 rebuilt)"), "\(first.stdout)")
        let files = try Self.caches()
        #expect(files.count == 9 && files.allSatisfy { $0.hasSuffix(".h5") && $0.contains(".vision-") }, "\(files)")
        #expect(try PlacementCLITests.sameBits(dir.file("off"), dir.file("on"), round: 2) == [], "cached and in-line runs differ")
        // pilot eval runs the tower in-line and reproduces the score the cached run stored
        let ev = try TrainCLITests.evalAgainstMetrics(run: dir.file("on"), client: 4, round: 2, clients: 6)
        #expect(ev.status == 0 && ev.printed.map { abs($0 - ev.stored) < 1e-6 } == true, "eval printed \(ev.stdout) \(ev.stderr), metrics.h5 has \(ev.stored)")
        for (run, flag) in [("off", "off"), ("on", "on")] {
            let m = try H5File.open(dir.file(run + "/metrics.h5"))
            #expect(try m.attribute("vision_feature_cache") == .string(flag))
            m.close()
        }

        // client 0's cache now says another tower made it; a row of client 3's has a flipped byte; the
        // grounding test split's is not an HDF5 file at all
        let data = Self.fixture.file("data")
        let c0 = try #require(files.first { $0.hasPrefix("clients/client-00.") }), c3 = try #require(files.first { $0.hasPrefix("clients/client-03.") })
        let grounding = try #require(files.first { $0.hasPrefix("test/grounding.") })
        try Self.rewrite(data + "/" + c0) { $0["tower_sha256"] = .string(String(repeating: "0", count: 64)) }
        var bytes = try Data(contentsOf: URL(fileURLWithPath: data + "/" + c3))
        let row = try H5File.open(data + "/" + c3).read(Float.self, at: "/features/00000002").values
        let at = try #require(bytes.range(of: row.withUnsafeBytes { Data($0.prefix(64)) })?.lowerBound)
        bytes[at + 9] ^= 0x10
        try bytes.write(to: URL(fileURLWithPath: data + "/" + c3))
        try Data("garbage".utf8).write(to: URL(fileURLWithPath: data + "/" + grounding))

        let again = try TrainCLITests.train(["--config", on, "--out", dir.file("again")], np: 5)
        try #require(again.status == 0, "with stale caches: \(again.stdout)\n\(again.stderr)")
        for (name, r) in [("first", first), ("again", again)] {
            print("vision cache, \(name) run:\n  " + r.stdout.split(separator: "\n").filter { $0.contains("vision features") }.joined(separator: "\n  "))
        }
        #expect(again.stdout.contains("vision features: client 0: rebuilding the cache (6 images): tower changed (000000000000… → "), "\(again.stdout)")
        #expect(again.stdout.contains("vision features: client 3: rebuilding the cache (6 images): damaged (the SHA-256 of /features/00000002 does not match its data)…"), "\(again.stdout)")
        #expect(again.stdout.contains("vision features: test split grounding: rebuilding the cache (4 images): damaged (not a readable HDF5 file)…"), "\(again.stdout)")
        #expect(again.stdout.contains("vision features: read from the cache beside each shard (6 reused, 0 built, 3 rebuilt)"), "\(again.stdout)")
        #expect(try PlacementCLITests.sameBits(dir.file("off"), dir.file("again"), round: 2) == [], "runs on rebuilt caches differ")
    }

    /// Rewrites an HDF5 file with the same datasets and its root attributes changed by `edit`.
    static func rewrite(_ path: String, edit: (inout [String: H5AttributeValue]) -> Void) throws {
        let old = try H5File.open(path)
        var attributes: [String: H5AttributeValue] = [:]
        for name in try old.attributeNames() { attributes[name] = try old.attribute(name) }
        edit(&attributes)
        let new = try H5File.create(path)
        for p in try old.datasetPaths() {
            let a = try old.read(Float.self, at: p)
            try new.write(a.values, shape: a.shape, at: p)
        }
        old.close()
        for (k, v) in attributes.sorted(by: { $0.key < $1.key }) { try new.setAttribute(k, v) }
        try new.commit()
    }
}
