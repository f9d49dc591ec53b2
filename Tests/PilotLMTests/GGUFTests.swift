import Foundation
import Testing
import PilotCore
import PilotTestSupport
import PilotLM

/// GGUF reading: metadata of every value type, every supported tensor type bit for bit against
/// gguf-py (fixture tiny_llama.gguf from Tests/Fixtures/lm/make_format_fixtures.py), the llama view through
/// Hugging Face names, every kind of bad file, and every tensor of the real SmolLM2 GGUF.
@Suite struct GGUFTests {
    static let tiny = FormatFixtures.path("tiny_llama.gguf")

    @Test func metadataOfEveryValueType() throws {
        let g = try GGUFFile(path: Self.tiny)
        #expect(g.version == 3)
        #expect(try g.string("general.architecture") == "llama")
        #expect(try g.int("test.u8") == 200)
        #expect(try g.int("test.i8") == -100)
        #expect(try g.int("test.u16") == 60000)
        #expect(try g.int("test.i16") == -30000)
        #expect(try g.int("test.u32") == 4_000_000_000)
        #expect(try g.int("test.i32") == -2_000_000_000)
        #expect(try g.float("test.f32") == Double(Float(0.1)))
        #expect(g.metadata["test.u64"] == .uint(UInt64(1) << 63 + 5))
        #expect(try g.int("test.i64") == -(1 << 62))
        #expect(try g.float("test.f64") == 0.1)
        #expect(try g.bool("test.bool"))
        #expect(try g.string("test.string") == "héllo ✓")
        #expect(try g.strings("test.strings") == ["a", "", "<|im_end|>"])
        #expect(try g.ints("test.ints") == [3, -1, 7])
        // arrays are typed buffers, not boxed values (#34 item 1)
        #expect(g.metadata["test.ints"] == .ints([3, -1, 7]))
        #expect(g.metadata["test.strings"] == .strings(["a", "", "<|im_end|>"]))
        #expect(try g.int("llama.attention.head_count") == 2)
        #expect(g.metadataKeys.first == "general.architecture")
        #expect(g.metadataKeys.count == 27)
    }

    @Test func missingOrMistypedKeyIsNamed() throws {
        let g = try GGUFFile(path: Self.tiny)
        let missing = try #require(thrownText { try g.int("llama.no_such_key") })
        #expect(missing.contains("llama.no_such_key") && missing.contains(Self.tiny), "\(missing)")
        let wrong = try #require(thrownText { try g.string("test.u8") })
        #expect(wrong.contains("test.u8") && wrong.contains("not a string"), "\(wrong)")
        #expect(thrownText { try g.int("test.u64") }?.contains("test.u64") == true)  // 2^63 + 5 does not fit an Int
        #expect(thrownText { try g.strings("test.ints") }?.contains("test.ints") == true)
    }

    @Test func everyTensorTypeBitForBitAsGGUFPy() throws {
        let g = try GGUFFile(path: Self.tiny)
        let expected = try FormatFixtures.json("tiny_llama_expected.json")
        let gg = try #require(expected["gguf"] as? [String: [String: Any]])
        #expect(g.tensorInfos.map(\.name) == expected["order"] as? [String])
        // every dtype GGUF files bring (I8 is safetensors-only: the int8 half of pilot's q8 matrices)
        #expect(Set(g.tensorInfos.map(\.dtype)) == Set(TensorDType.allCases).subtracting([.i8]))
        for t in g.tensorInfos {
            let e = try #require(gg[t.name])
            #expect(t.dtype.rawValue == e["type"] as? String, "\(t.name)")
            #expect(t.shape == FormatFixtures.ints(e["shape"]), "\(t.name)")
            #expect(try FormatFixtures.bits(g, t.name) == FormatFixtures.u32s(e["bits"]), "\(t.name) \(t.dtype)")
        }
        #expect(g.info("blk.0.attn_q.weight")?.shape == [16, 64])  // row-major: the reverse of ne = [64, 16]
        #expect(g.info("output_norm.weight")?.shape == [64])
    }

    @Test func version2ReadsLikeVersion3() throws {
        let tmp = TemporaryDirectory("gguf-v2"); defer { tmp.cleanup() }
        var bytes = try FormatFixtures.bytes("tiny_llama.gguf")
        putLE(UInt32(2), into: &bytes, at: 4)
        try write(bytes, to: tmp.file("v2.gguf"))
        let g2 = try GGUFFile(path: tmp.file("v2.gguf")), g3 = try GGUFFile(path: Self.tiny)
        #expect(g2.version == 2)
        #expect(g2.metadata == g3.metadata)
        #expect(try FormatFixtures.bits(g2, "blk.0.attn_k.weight") == FormatFixtures.bits(g3, "blk.0.attn_k.weight"))
        putLE(UInt32(4), into: &bytes, at: 4)
        try write(bytes, to: tmp.file("v4.gguf"))
        #expect(thrownText { try GGUFFile(path: tmp.file("v4.gguf")) }?.contains("version 4") == true)
    }

    @Test func llamaSourceUsesHuggingFaceNamesAndUndoesThePermutation() throws {
        let src = try GGUFLlamaSource(file: GGUFFile(path: Self.tiny))
        let expected = try #require(try FormatFixtures.json("tiny_llama_expected.json")["hf"] as? [String: [String: Any]])
        #expect(Set(src.tensorInfos.map(\.name)) == Set(expected.keys))
        #expect(src.info("lm_head.weight") == nil)  // no output.weight: tied embeddings
        for (name, e) in expected {
            #expect(src.info(name)?.shape == FormatFixtures.ints(e["shape"]), "\(name)")
            #expect(try FormatFixtures.bits(src, name) == FormatFixtures.u32s(e["bits"]), "\(name)")
        }
        // The permutation matters: q_proj differs from the raw GGUF rows.
        #expect(try FormatFixtures.bits(src, "model.layers.0.self_attn.q_proj.weight") != FormatFixtures.bits(src.gguf, "blk.0.attn_q.weight"))
        #expect(try FormatFixtures.bits(src, "model.layers.0.self_attn.v_proj.weight") == FormatFixtures.bits(src.gguf, "blk.0.attn_v.weight"))
    }

    @Test func huggingFaceConfigHasGGUFToHFKeys() throws {
        let src = try GGUFLlamaSource(file: GGUFFile(path: Self.tiny))
        let cfg = try src.huggingFaceConfig()
        #expect(Set(cfg.keys) == ["architectures", "model_type", "hidden_size", "intermediate_size", "num_hidden_layers",
                                  "num_attention_heads", "num_key_value_heads", "head_dim", "max_position_embeddings",
                                  "rms_norm_eps", "rope_theta", "rope_parameters", "vocab_size", "hidden_act", "attention_bias",
                                  "mlp_bias", "attention_dropout", "initializer_range", "tie_word_embeddings", "bos_token_id",
                                  "eos_token_id", "pad_token_id", "torch_dtype", "dtype", "use_cache"])
        #expect(cfg["hidden_size"] as? Int == 64 && cfg["num_attention_heads"] as? Int == 2 && cfg["num_key_value_heads"] as? Int == 1)
        #expect(cfg["head_dim"] as? Int == 32 && cfg["vocab_size"] as? Int == 8 && cfg["tie_word_embeddings"] as? Bool == true)
        #expect(cfg["rms_norm_eps"] as? Double == Double(Float(1e-5)) && cfg["rope_theta"] as? Double == 10000)
        #expect(cfg["bos_token_id"] as? Int == 1 && cfg["eos_token_id"] as? Int == 2 && cfg["pad_token_id"] as? Int == 2)
        let json = try JSONSerialization.jsonObject(with: try src.huggingFaceConfigJSON()) as? [String: Any]
        #expect(json?["model_type"] as? String == "llama")
    }

    @Test func otherArchitecturesAreRefusedByName() throws {
        let tmp = TemporaryDirectory("gguf-arch"); defer { tmp.cleanup() }
        var bytes = try FormatFixtures.bytes("tiny_llama.gguf")
        let at = try #require(find("llama", in: bytes))  // the value of general.architecture comes first
        for (i, b) in "qwen2".utf8.enumerated() { bytes[at + i] = b }
        try write(bytes, to: tmp.file("qwen.gguf"))
        let text = try #require(thrownText { try GGUFLlamaSource(file: GGUFFile(path: tmp.file("qwen.gguf"))) })
        #expect(text.contains("qwen2") && text.contains("llama") && text.contains(tmp.file("qwen.gguf")), "\(text)")
    }

    // MARK: bad files, each built from tiny_llama.gguf by byte edits

    static func expectError(_ path: String, _ needles: [String], sourceLocation: SourceLocation = #_sourceLocation) {
        let text = thrownText { try GGUFFile(path: path) }
        #expect(text != nil, "no error for \(path)", sourceLocation: sourceLocation)
        for n in [path] + needles { #expect(text?.contains(n) == true, "'\(n)' not in: \(text ?? "nil")", sourceLocation: sourceLocation) }
    }

    /// The byte offset of tensor `name`'s info fields after its name: n_dims, then ne, type and offset.
    static func infoFields(_ name: String, _ bytes: [UInt8]) throws -> (nDims: Int, ne: Int, type: Int, offset: Int) {
        let at = try #require(find(name, in: bytes)) + name.utf8.count
        let n = Int(getLE(UInt32.self, bytes, at: at))
        return (at, at + 4, at + 4 + 8 * n, at + 8 + 8 * n)
    }

    @Test func truncatedFiles() throws {
        let tmp = TemporaryDirectory("gguf-bad"); defer { tmp.cleanup() }
        let bytes = try FormatFixtures.bytes("tiny_llama.gguf")
        for (label, cut) in [("header", 12), ("metadata", 700), ("infos", 1100)] {
            try write(Array(bytes[0..<cut]), to: tmp.file("\(label).gguf"))
            Self.expectError(tmp.file("\(label).gguf"), [cut < 24 ? "GGUF" : "truncated"])
        }
        try write(Array(bytes.dropLast(8)), to: tmp.file("data.gguf"))
        Self.expectError(tmp.file("data.gguf"), ["output_norm.weight", "truncated"])  // the last tensor in the data area
        try write([], to: tmp.file("empty.gguf"))
        Self.expectError(tmp.file("empty.gguf"), [])
    }

    @Test func wrongMagic() throws {
        let tmp = TemporaryDirectory("gguf-bad"); defer { tmp.cleanup() }
        var bytes = try FormatFixtures.bytes("tiny_llama.gguf")
        bytes[0] = UInt8(ascii: "X")
        try write(bytes, to: tmp.file("magic.gguf"))
        Self.expectError(tmp.file("magic.gguf"), ["magic"])
    }

    @Test func hugeCountsAndLengths() throws {
        let tmp = TemporaryDirectory("gguf-bad"); defer { tmp.cleanup() }
        let good = try FormatFixtures.bytes("tiny_llama.gguf")
        var bytes = good
        putLE(UInt64(1) << 40, into: &bytes, at: 8)  // tensor count
        try write(bytes, to: tmp.file("tensors.gguf"))
        Self.expectError(tmp.file("tensors.gguf"), ["\(UInt64(1) << 40) tensors"])
        bytes = good
        putLE(UInt64(1) << 40, into: &bytes, at: 16)  // kv count
        try write(bytes, to: tmp.file("kv.gguf"))
        Self.expectError(tmp.file("kv.gguf"), ["\(UInt64(1) << 40)"])
        bytes = good
        putLE(UInt64(good.count), into: &bytes, at: 24)  // the first key's length: past the end of the file
        try write(bytes, to: tmp.file("string.gguf"))
        Self.expectError(tmp.file("string.gguf"), ["string of \(good.count) bytes", "truncated"])
        bytes = good
        let strings = try #require(find("test.strings", in: good)) + "test.strings".utf8.count
        putLE(UInt64(1) << 50, into: &bytes, at: strings + 8)  // element count of the string array (after its u32 type and element type)
        try write(bytes, to: tmp.file("array.gguf"))
        Self.expectError(tmp.file("array.gguf"), ["test.strings"])
        bytes = good
        let q = try Self.infoFields("blk.0.attn_q.weight", good)
        putLE(UInt64(1) << 39, into: &bytes, at: q.ne + 8)  // rows of attn_q
        try write(bytes, to: tmp.file("dims.gguf"))
        Self.expectError(tmp.file("dims.gguf"), ["blk.0.attn_q.weight"])
    }

    /// #34 item 1: an array count the file could hold but no model has (here 2^24 + 1 int32s, with
    /// 64 MiB appended so the size check passes) is refused by key before anything is allocated.
    @Test func metadataArrayCountIsCapped() throws {
        let tmp = TemporaryDirectory("gguf-cap"); defer { tmp.cleanup() }
        var bytes = try FormatFixtures.bytes("tiny_llama.gguf")
        let ints = try #require(find("test.ints", in: bytes)) + "test.ints".utf8.count
        let n = UInt64(1 << 24) + 1
        putLE(n, into: &bytes, at: ints + 8)  // element count (after the u32 value type and u32 element type)
        bytes += [UInt8](repeating: 0, count: Int(n) * 8)
        try write(bytes, to: tmp.file("cap.gguf"))
        Self.expectError(tmp.file("cap.gguf"), ["test.ints", "\(n) elements, more than the \(1 << 24)"])
    }

    @Test func tensorOffsetPastTheEnd() throws {
        let tmp = TemporaryDirectory("gguf-bad"); defer { tmp.cleanup() }
        var bytes = try FormatFixtures.bytes("tiny_llama.gguf")
        let f = try Self.infoFields("blk.0.attn_k.weight", bytes)
        putLE(UInt64(1) << 40, into: &bytes, at: f.offset)
        try write(bytes, to: tmp.file("offset.gguf"))
        Self.expectError(tmp.file("offset.gguf"), ["blk.0.attn_k.weight", "past the end"])
        putLE(UInt64(bytes.count - 1024), into: &bytes, at: f.offset)  // inside the file, but the tensor runs past it
        try write(bytes, to: tmp.file("offset2.gguf"))
        Self.expectError(tmp.file("offset2.gguf"), ["blk.0.attn_k.weight"])
    }

    @Test func unsupportedTensorTypeIsRefusedByName() throws {
        let tmp = TemporaryDirectory("gguf-bad"); defer { tmp.cleanup() }
        var bytes = try FormatFixtures.bytes("tiny_llama.gguf")
        let f = try Self.infoFields("blk.0.attn_q.weight", bytes)
        putLE(UInt32(12), into: &bytes, at: f.type)
        try write(bytes, to: tmp.file("q4k.gguf"))
        Self.expectError(tmp.file("q4k.gguf"), ["blk.0.attn_q.weight", "Q4_K", "F32, F16, BF16, Q8_0, Q4_0 and Q4_1"])
        putLE(UInt32(99), into: &bytes, at: f.type)
        try write(bytes, to: tmp.file("t99.gguf"))
        Self.expectError(tmp.file("t99.gguf"), ["blk.0.attn_q.weight", "ggml type 99"])
    }

    @Test func rowsThatAreNotWholeBlocks() throws {
        let tmp = TemporaryDirectory("gguf-bad"); defer { tmp.cleanup() }
        var bytes = try FormatFixtures.bytes("tiny_llama.gguf")
        let f = try Self.infoFields("blk.0.attn_q.weight", bytes)
        putLE(UInt64(48), into: &bytes, at: f.ne)  // 48-element rows of Q4_0 (blocks of 32)
        try write(bytes, to: tmp.file("rows.gguf"))
        Self.expectError(tmp.file("rows.gguf"), ["blk.0.attn_q.weight", "multiple of"])
    }

    // MARK: the real model

    static var smolGGUF: String {
        ProcessInfo.processInfo.environment["PILOT_SMOLLM2_GGUF"] ?? (repositoryRoot + "/models/.cache/SmolLM2-135M-Instruct.Q4_1.gguf")
    }

    @Test func smollm2EveryTensorMatchesGGUFPy() throws {
        let path = Self.smolGGUF
        try #require(FileManager.default.fileExists(atPath: path), "no SmolLM2 GGUF at \(path): run scripts/get_smollm2.sh (or set PILOT_SMOLLM2_GGUF)")
        let expected = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: LMFixtures.path("smollm2_dequant_sha256.json")))) as? [String: Any])
        let tensors = try #require(expected["tensors"] as? [String: [String: Any]])
        let g = try GGUFFile(path: path)
        #expect(g.tensorInfos.count == tensors.count)
        var buf = [Float]()
        for t in g.tensorInfos {
            let e = try #require(tensors[t.name], "\(t.name) not in the fixture")
            #expect(t.dtype.rawValue == e["type"] as? String, "\(t.name)")
            #expect(t.shape == FormatFixtures.ints(e["shape"]), "\(t.name)")
            buf = [Float](repeating: .nan, count: t.count)
            try buf.withUnsafeMutableBufferPointer { try g.readFloat32(t.name, into: $0) }
            #expect(buf.withUnsafeBytes { SHA256.hex($0) } == e["sha256"] as? String, "\(t.name) \(t.dtype)")
        }
        let hf = try #require(expected["hf"] as? [String: String])
        let src = try GGUFLlamaSource(file: g)
        for (name, sha) in hf {
            let info = try #require(src.info(name))
            buf = [Float](repeating: .nan, count: info.count)
            try buf.withUnsafeMutableBufferPointer { try src.readFloat32(name, into: $0) }
            #expect(buf.withUnsafeBytes { SHA256.hex($0) } == sha, "\(name)")
        }
        let cfg = try src.huggingFaceConfig()
        #expect(cfg["num_hidden_layers"] as? Int == 30 && cfg["num_key_value_heads"] as? Int == 3 && cfg["vocab_size"] as? Int == 49152)
        #expect(cfg["head_dim"] as? Int == 64 && cfg["rope_theta"] as? Double == 100000 && cfg["tie_word_embeddings"] as? Bool == true)
    }
}
