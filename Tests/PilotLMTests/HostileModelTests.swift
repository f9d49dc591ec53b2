import Foundation
import Testing
import PilotCore
import PilotLM
import PilotTestSupport

/// #34 item 1, case by case: every config size is capped, the tensors are checked against the config
/// before anything is allocated (expected and found named), the parameter count of pilot-model.json is
/// checked against the tensors, GGUF metadata cannot divide by zero or overflow a token id, and an
/// import that would not load writes nothing. HostileModelFuzzTests does the same at random.
@Suite("Hostile model files, case by case")
struct HostileModelTests {
    static func modelDirectory(_ tmp: TemporaryDirectory, _ name: String = "m", config edit: [String: Any] = [:]) throws -> String {
        let dir = tmp.file(name)
        try HostileFixtures.writeModelDirectory(dir)
        if !edit.isEmpty {
            var c = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/config.json"))) as? [String: Any])
            for (k, v) in edit { c[k] = v }
            try JSONSerialization.data(withJSONObject: c).write(to: URL(fileURLWithPath: dir + "/config.json"))
        }
        return dir
    }

    static func refusal(_ body: () throws -> Void) -> String {
        do { try body(); return "" } catch let e as PilotError { return e.description } catch { return "not a PilotError: \(error)" }
    }

    @Test("every size in config.json is capped, by key, with the cap; token ids lie in the vocabulary")
    func configCaps() throws {
        let tmp = TemporaryDirectory("hostile"); defer { tmp.cleanup() }
        let caps = ["hidden_size": 1 << 16, "intermediate_size": 1 << 18, "num_hidden_layers": 1 << 10, "num_attention_heads": 1 << 10,
                    "num_key_value_heads": 1 << 10, "head_dim": 1 << 10, "vocab_size": 1 << 24, "max_position_embeddings": 1 << 24]
        for (key, cap) in caps {
            for v in [cap + 1, 0, -3] {
                let dir = try Self.modelDirectory(tmp, "\(key)\(v)", config: [key: v])
                let m = Self.refusal { _ = try PretrainedLM(directory: dir) }
                #expect(m.contains(dir + "/config.json") && m.contains("\(key) \(v) is out of range") && m.contains("1…\(cap)"), "\(m)")
            }
        }
        let dir = try Self.modelDirectory(tmp, "eos", config: ["eos_token_id": [2, 300]])
        let m = Self.refusal { _ = try PretrainedLM(directory: dir) }
        #expect(m.contains("eos_token_id 300") && m.contains("0..<256"), "\(m)")
    }

    @Test("sizes the tensors do not back are refused naming the tensor, expected and found, before any allocation")
    func configAgainstTensors() throws {
        let tmp = TemporaryDirectory("hostile"); defer { tmp.cleanup() }
        // 2^24 × 2^16 Float32 embeddings would be 4 TiB: refused by the tensor's shape, never allocated.
        var dir = try Self.modelDirectory(tmp, "huge", config: ["vocab_size": 1 << 24, "hidden_size": 1 << 16])
        var m = Self.refusal { _ = try PretrainedLM(directory: dir) }
        #expect(m.contains(dir + "/model.safetensors") && m.contains("model.embed_tokens.weight") && m.contains("[256, 64]")
                && m.contains("[16777216, 65536] = [vocab_size, hidden_size]"), "\(m)")
        dir = try Self.modelDirectory(tmp, "more", config: ["num_hidden_layers": 3])
        m = Self.refusal { _ = try PretrainedLM(directory: dir) }
        #expect(m.contains("model.layers.2.input_layernorm.weight' is missing") && m.contains("8 more tensors"), "\(m)")
        dir = try Self.modelDirectory(tmp, "fewer", config: ["num_hidden_layers": 1])
        m = Self.refusal { _ = try PretrainedLM(directory: dir) }
        #expect(m.contains("model.layers.1.") && m.contains("not part of the model config.json describes") && m.contains("num_hidden_layers 1"), "\(m)")
        dir = try Self.modelDirectory(tmp, "untied", config: ["tie_word_embeddings": false])
        m = Self.refusal { _ = try PretrainedLM(directory: dir) }
        #expect(m.contains("lm_head.weight' is missing") && m.contains("tie_word_embeddings"), "\(m)")
        dir = try Self.modelDirectory(tmp, "heads", config: ["head_dim": 8])
        m = Self.refusal { _ = try PretrainedLM(directory: dir) }
        #expect(m.contains("q_proj.weight' has shape [64, 64]; expected [32, 64] = [num_attention_heads·head_dim, hidden_size]"), "\(m)")
    }

    /// model.safetensors of `dir` rewritten with `extra` tensors (zeros) beside the fixture's.
    static func addTensors(_ dir: String, _ extra: [TensorInfo]) throws {
        let st = try SafetensorsFile(path: LMFixtures.path("tiny-gqa-tied/model.safetensors"))
        try SafetensorsWriter.write(path: dir + "/model.safetensors", tensors: st.tensorInfos + extra) { info, out in
            if st.info(info.name) != nil { try st.readFloat32(info.name, into: out) } else { out.initialize(repeating: 0) }
        }
    }

    @Test("rotary inv_freq buffers of old checkpoints are ignored (and not imported) when their shape fits; any other extra is refused")
    func extras() throws {
        let tmp = TemporaryDirectory("hostile"); defer { tmp.cleanup() }
        let inv = "model.layers.0.self_attn.rotary_emb.inv_freq"
        var dir = try Self.modelDirectory(tmp, "inv")
        try Self.addTensors(dir, [TensorInfo(name: inv, shape: [8], dtype: .f32)])
        let lm = try PretrainedLM(directory: dir)
        guard case let .imported(manifest) = try ModelImport.run(source: dir, out: tmp.file("inv-imported")) else { Issue.record("not imported"); return }
        #expect(manifest.parameters == lm.parameterCount)
        #expect(try SafetensorsFile(path: tmp.file("inv-imported/model.safetensors")).info(inv) == nil)
        dir = try Self.modelDirectory(tmp, "inv-wrong")
        try Self.addTensors(dir, [TensorInfo(name: inv, shape: [16], dtype: .f32)])
        var m = Self.refusal { _ = try PretrainedLM(directory: dir) }
        #expect(m.contains(inv) && m.contains("[16]") && m.contains("[8]"), "\(m)")
        dir = try Self.modelDirectory(tmp, "stray")
        try Self.addTensors(dir, [TensorInfo(name: "model.layers.0.self_attn.q_norm.weight", shape: [16], dtype: .f32)])
        m = Self.refusal { _ = try PretrainedLM(directory: dir) }
        #expect(m.contains("q_norm.weight") && m.contains("not part of the model"), "\(m)")
    }

    @Test("pilot-model.json's parameter count must be the tensors'")
    func manifestParameters() throws {
        let tmp = TemporaryDirectory("hostile"); defer { tmp.cleanup() }
        let out = tmp.file("imported")
        _ = try ModelImport.run(source: try Self.modelDirectory(tmp), out: out)
        let lm = try PretrainedLM(directory: out)
        // tiny-gqa-tied: embeddings 256·64, 2 layers of 36,992, the final norm 64
        #expect(lm.manifest?.parameters == lm.parameterCount && lm.parameterCount == 90_432)
        let path = out + "/" + ModelManifest.fileName
        var manifest = try #require(try ModelManifest.read(directory: out))
        manifest.parameters += 1
        try manifest.write(directory: out)
        let m = Self.refusal { _ = try PretrainedLM(directory: out) }
        #expect(m.contains(path) && m.contains("\(lm.parameterCount + 1) parameters") && m.contains("import the model again"), "\(m)")
    }

    @Test("an import that would not load writes nothing: no directory, no staging, no parents")
    func importWritesNothing() throws {
        let tmp = TemporaryDirectory("hostile"); defer { tmp.cleanup() }
        let src = try Self.modelDirectory(tmp, "src", config: ["num_hidden_layers": 3])
        let out = tmp.file("new/deeper/model")
        let m = Self.refusal { _ = try ModelImport.run(source: src, out: out) }
        #expect(m.contains("model.layers.2.") && m.contains("missing"), "\(m)")
        #expect(!FileManager.default.fileExists(atPath: tmp.file("new")))
        // A GGUF whose tokenizer fails (an unknown-token id beyond Int32, which only the tokenizer reads)
        // passes the config and weights checks, so the parents and the staging directory exist when it fails.
        var g = try HostileFixtures.gguf()
        g.metadata("tokenizer.ggml.unknown_token_id", .uint(1 << 40))
        try write(g.build().bytes, to: tmp.file("unk.gguf"))
        let e = Self.refusal { _ = try ModelImport.run(source: tmp.file("unk.gguf"), out: out) }
        #expect(e.contains("tokenizer.ggml.unknown_token_id") && e.contains(tmp.file("unk.gguf")), "\(e)")
        #expect(!FileManager.default.fileExists(atPath: tmp.file("new")))
    }

    @Test("a CLIP tower's sizes are capped and its tensors checked before the weights are allocated")
    func clipTower() throws {
        let tmp = TemporaryDirectory("hostile"); defer { tmp.cleanup() }
        let src = repositoryRoot + "/Tests/Fixtures/clip/vit-quickgelu"
        func tower(_ name: String, _ edit: [String: Any]) throws -> String {
            let dir = tmp.file(name)
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: src + "/model.safetensors", toPath: dir + "/model.safetensors")
            var c = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: src + "/config.json"))) as? [String: Any])
            for (k, v) in edit { c[k] = v }
            try JSONSerialization.data(withJSONObject: c).write(to: URL(fileURLWithPath: dir + "/config.json"))
            return dir
        }
        var dir = try tower("layers", ["num_hidden_layers": 1 << 24])
        var m = Self.refusal { _ = try CLIPVisionTower.load(directory: dir) }
        #expect(m.contains(dir + "/config.json") && m.contains("num_hidden_layers 16777216 is out of range"), "\(m)")
        dir = try tower("width", ["hidden_size": 1e300])
        m = Self.refusal { _ = try CLIPVisionTower.load(directory: dir) }
        #expect(m.contains("hidden_size") && m.contains("positive integer"), "\(m)")
        // 2^14-pixel images: a position embedding of 2^22 + 1 rows the file does not hold, refused by shape.
        dir = try tower("image", ["image_size": 1 << 14])
        m = Self.refusal { _ = try CLIPVisionTower.load(directory: dir) }
        #expect(m.contains(dir + "/model.safetensors") && m.contains("position_embedding.weight") && m.contains("[4194305, 64]"), "\(m)")
    }

    @Test("GGUF metadata: a zero head count, a token id beyond Int32 and two tensors with one name are refused, not trapped on")
    func ggufMetadata() throws {
        let tmp = TemporaryDirectory("hostile"); defer { tmp.cleanup() }
        var g = try HostileFixtures.gguf()
        try write(g.build().bytes, to: tmp.file("ok.gguf"))
        _ = try LlamaWeights.load(gguf: tmp.file("ok.gguf"))
        g.metadata("llama.attention.head_count", .uint(0))
        try write(g.build().bytes, to: tmp.file("h0.gguf"))
        var m = Self.refusal { _ = try LlamaWeights.load(gguf: tmp.file("h0.gguf")) }
        #expect(m.contains(tmp.file("h0.gguf")) && m.contains("num_attention_heads 0"), "\(m)")
        g = try HostileFixtures.gguf()
        g.metadata("tokenizer.ggml.bos_token_id", .uint(1 << 40))
        try write(g.build().bytes, to: tmp.file("bos.gguf"))
        m = Self.refusal { _ = try ModelImport.run(source: tmp.file("bos.gguf"), out: tmp.file("out")) }
        #expect(m.contains("bos_token_id") && m.contains("\(1 << 40)"), "\(m)")
        g = try HostileFixtures.gguf()
        g.rename(tensor: "blk.1.attn_q.weight", to: "blk.01.attn_q.weight")
        g.rename(tensor: "blk.1.attn_k.weight", to: "blk.1.attn_q.weight")
        try write(g.build().bytes, to: tmp.file("dup.gguf"))
        m = Self.refusal { _ = try LlamaWeights.load(gguf: tmp.file("dup.gguf")) }
        #expect(m.contains("blk.01.attn_q.weight") && m.contains("model.layers.1.self_attn.q_proj.weight"), "\(m)")
        #expect(!FileManager.default.fileExists(atPath: tmp.file("out")))
    }
}
