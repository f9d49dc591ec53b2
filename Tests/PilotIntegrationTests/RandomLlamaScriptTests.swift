import Foundation
import PilotLM
import PilotTestSupport
import Testing

/// scripts/make_random_llama.py (random Llama directories at real sizes, docs/performance.md "Real sizes"):
/// a tiny shape written in several bf16 shards with a tokenizer cut to the vocabulary loads in
/// `pilot model info` with the parameter count the shape implies; the same seed writes the same bytes;
/// the named presets are the released shapes; a vocabulary below the special tokens is refused, leaving
/// nothing. Needs python3 with numpy (skipped without it).
/// Whether python3 can import numpy (the script's one dependency).
private let pythonHasNumpy: Bool = (try? runProcess("/usr/bin/python3", ["-c", "import numpy"]).status) == 0

@Suite("scripts/make_random_llama.py", .serialized, .enabled(if: pythonHasNumpy, "python3 with numpy is not installed"))
struct RandomLlamaScriptTests {
    static let script = repositoryRoot + "/scripts/make_random_llama.py"

    /// A byte-level BPE tokenizer (252 bytes in GPT-2's alphabet, 4 specials at 252–255) with three
    /// merges: "a b" → "ab" (256), "ab c" → "abc" (257), "t h" → "th" (258); ChatML template.
    static func tokenizerDirectory(_ dir: TemporaryDirectory) throws -> String {
        var chars: [Int: Int] = [:]
        for b in Array(33...126) + Array(161...172) + Array(174...255) { chars[b] = b }
        var n = 0
        for b in 0..<256 where chars[b] == nil { chars[b] = 256 + n; n += 1 }
        let bytes = (0..<252).map { String(UnicodeScalar(UInt32(chars[$0]!))!) }
        let tokens = bytes + ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<pad>", "ab", "abc", "th"]
        let tok = try BPETokenizer(ggufTokens: tokens, merges: ["a b", "ab c", "t h"],
                                   tokenTypes: [Int](repeating: 1, count: 252) + [3, 3, 3, 3, 1, 1, 1], preTokenizer: "gpt2",
                                   bos: 253, eos: 254, unk: nil, pad: 255, addBOS: false, source: "test")
        let path = dir.file("tok")
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
        try tok.tokenizerJSON().write(to: URL(fileURLWithPath: path + "/tokenizer.json"))
        let template = #"{"chat_template": "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}", "eos_token": "<|im_end|>"}"#
        try Data(template.utf8).write(to: URL(fileURLWithPath: path + "/tokenizer_config.json"))
        return path
    }

    /// C 32, F 64, 2 layers, 4 heads, 2 KV heads, vocab 257, untied: written in shards of at most 20 KB.
    static let shape = ["--hidden", "32", "--intermediate", "64", "--layers", "2", "--heads", "4", "--kv-heads", "2",
                        "--vocab", "257", "--no-tie", "--max-shard-size", "20KB"]
    static let expectedParameters: Int = {
        let C = 32, F = 64, L = 2, KVD = 2 * 8, V = 257
        return 2 * V * C + L * (2 * C * C + 2 * KVD * C + 3 * C * F + 2 * C) + C
    }()

    func make(_ out: String, tokenizer: String, _ extra: [String] = []) throws -> ProcessResult {
        try runProcess("/usr/bin/python3", [Self.script] + Self.shape + ["--tokenizer-from", tokenizer] + extra + [out], timeout: 120)
    }

    @Test("a sharded bf16 directory with a cut tokenizer loads with the shape's parameter count, and the seed fixes its bytes")
    func writesLoadableShards() throws {
        let dir = TemporaryDirectory("random-llama")
        defer { dir.cleanup() }
        let tok = try Self.tokenizerDirectory(dir)
        let made = try make(dir.file("m"), tokenizer: tok, ["--seed", "7"])
        try #require(made.status == 0, "\(made.stdout) \(made.stderr)")

        let index = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir.file("m/model.safetensors.index.json")))) as! [String: Any]
        let shards = Set((index["weight_map"] as! [String: String]).values)
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.file("m")).filter { $0.hasSuffix(".safetensors") }
        #expect(shards.count > 1 && Set(files) == shards, "\(shards) vs \(files)")
        #expect(shards.contains("model-00001-of-\(String(format: "%05d", shards.count)).safetensors"), "\(shards)")
        #expect((index["metadata"] as! [String: Any])["total_size"] as? Int == 2 * Self.expectedParameters)

        let info = try runProcess(pilotBinary, ["model", "info", "--model", dir.file("m")])
        try #require(info.status == 0, "\(info.stderr)")
        #expect(info.stdout.contains("parameters:   \(Self.expectedParameters) "), "\(info.stdout)")
        #expect(info.stdout.contains("stored:       BF16 ×"), "\(info.stdout)")
        #expect(info.stdout.contains("257 tokens"), "\(info.stdout)")

        // "ab" (256) stays, "abc" (257) and "th" (258) and their merges are gone
        let ids = try runProcess(pilotBinary, ["tokenize", "--model", dir.file("m"), "--text", "abcth"])
        try #require(ids.status == 0, "\(ids.stderr)")
        #expect(ids.stdout.hasPrefix("[256,\(Int(UnicodeScalar("c").value)),\(Int(UnicodeScalar("t").value)),\(Int(UnicodeScalar("h").value))]"), "\(ids.stdout)")

        // the same seed: the same bytes; another seed: other values
        let again = try make(dir.file("m2"), tokenizer: tok, ["--seed", "7"])
        let other = try make(dir.file("m3"), tokenizer: tok, ["--seed", "8"])
        try #require(again.status == 0 && other.status == 0, "\(again.stderr) \(other.stderr)")
        for f in shards {
            let a = try Data(contentsOf: URL(fileURLWithPath: dir.file("m/" + f)))
            #expect(a == (try Data(contentsOf: URL(fileURLWithPath: dir.file("m2/" + f)))), "\(f) differs between two runs of seed 7")
            #expect(a != (try Data(contentsOf: URL(fileURLWithPath: dir.file("m3/" + f)))), "\(f) is the same under seeds 7 and 8")
        }
    }

    @Test("the presets are SmolLM2-1.7B's and Llama-2-7B's shapes")
    func presets() throws {
        for (preset, params, keys) in [("smollm2-1.7b", 1_711_376_384, ["\"hidden_size\": 2048", "\"num_hidden_layers\": 24", "\"tie_word_embeddings\": true", "\"rope_theta\": 130000.0"]),
                                       ("llama2-7b", 6_738_415_616, ["\"hidden_size\": 4096", "\"intermediate_size\": 11008", "\"num_key_value_heads\": 32",
                                                                     "\"vocab_size\": 32000", "\"tie_word_embeddings\": false", "\"torch_dtype\": \"bfloat16\""])] {
            let r = try runProcess("/usr/bin/python3", [Self.script, "--preset", preset, "--print-config", "-"])
            try #require(r.status == 0, "\(r.stderr)")
            #expect(r.stdout.contains("parameters \(params) bytes \(2 * params)"), "\(preset): \(r.stdout)")
            for k in keys { #expect(r.stdout.contains(k), "\(preset): no \(k) in \(r.stdout)") }
        }
    }

    @Test("a vocabulary below the special tokens is refused and leaves nothing")
    func refusesSpecialTokensAboveVocabulary() throws {
        let dir = TemporaryDirectory("random-llama-bad")
        defer { dir.cleanup() }
        let tok = try Self.tokenizerDirectory(dir)
        let r = try runProcess("/usr/bin/python3", [Self.script, "--hidden", "32", "--intermediate", "64", "--layers", "1", "--heads", "4",
                                                    "--kv-heads", "2", "--vocab", "253", "--tokenizer-from", tok, dir.file("m")])
        #expect(r.status != 0)
        #expect(r.stderr.contains("<|im_start|>") && r.stderr.contains("--vocab 253"), "\(r.stderr)")
        let left = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasPrefix("m") }
        #expect(left.isEmpty, "left behind: \(left)")
    }
}
