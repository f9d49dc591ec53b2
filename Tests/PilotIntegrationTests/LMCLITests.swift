import Foundation
import PilotTestSupport
import Testing

/// The commands a user runs first on a real model (`pilot model import|info|logits`, `generate`,
/// `tokenize`), on SmolLM2-135M-Instruct as scripts/get_smollm2.sh imported it (scripts/test.sh runs
/// that script before the tests), and the import's refusals on bad input.
@Suite("pilot model, generate and tokenize on SmolLM2", .serialized)
struct LMCLITests {
    static var modelDir: String { ProcessInfo.processInfo.environment["PILOT_SMOLLM2"] ?? (repositoryRoot + "/models/smollm2-135m-instruct") }
    static var gguf: String { ProcessInfo.processInfo.environment["PILOT_SMOLLM2_GGUF"] ?? (repositoryRoot + "/models/.cache/SmolLM2-135M-Instruct.Q4_1.gguf") }

    static func requireModel() throws -> String {
        try #require(FileManager.default.fileExists(atPath: modelDir + "/config.json"),
                     "SmolLM2 is not imported at \(modelDir): run scripts/get_smollm2.sh")
        return modelDir
    }

    @Test("pilot generate answers the capital of France as transformers does")
    func generateParis() throws {
        let m = try Self.requireModel()
        let r = try runProcess(pilotBinary, ["generate", "--model", m, "--prompt", "What is the capital of France?", "--max-new-tokens", "32"], timeout: 300)
        try #require(r.status == 0, "stderr: \(r.stderr)")
        #expect(r.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "The capital of France is Paris.", "got: \(r.stdout)")
    }

    @Test("pilot tokenize prints the ids docs/design.md §9 measured with tokenizers")
    func tokenizeKnownIDs() throws {
        let m = try Self.requireModel()
        let r = try runProcess(pilotBinary, ["tokenize", "--model", m, "--text", "The capital of France is"])
        try #require(r.status == 0, "stderr: \(r.stderr)")
        let lines = r.stdout.split(separator: "\n").map(String.init)
        #expect(lines.first == "[504,3575,282,4649,314]", "\(r.stdout)")
        #expect(lines.count == 2 && lines[1].contains("Ġcapital"), "\(r.stdout)")
        let chat = try runProcess(pilotBinary, ["tokenize", "--model", m, "--text", "<|im_start|>user\nHi<|im_end|>"])
        #expect(chat.stdout.hasPrefix("[1,4093,198,26843,2]"), "\(chat.stdout)")
    }

    @Test("pilot model info names the architecture, the counts and the chat format")
    func info() throws {
        let m = try Self.requireModel()
        let r = try runProcess(pilotBinary, ["model", "info", "--model", m])
        try #require(r.status == 0, "stderr: \(r.stderr)")
        for s in ["30 layers", "hidden 576", "9 query heads", "3 KV heads", "134515008", "49152 tokens", "chatml", "Q4_1 ×210", "Q8_0 ×1", "You are a helpful AI assistant named SmolLM"] {
            #expect(r.stdout.contains(s), "missing '\(s)' in:\n\(r.stdout)")
        }
    }

    @Test("pilot model logits writes the last position's logits; the top token after 'The capital of France is' is ' Paris'")
    func logits() throws {
        let m = try Self.requireModel()
        let dir = TemporaryDirectory(); defer { dir.cleanup() }
        let out = dir.file("l.json")
        let r = try runProcess(pilotBinary, ["model", "logits", "--model", m, "--text", "The capital of France is", "--out", out], timeout: 300)
        try #require(r.status == 0, "stderr: \(r.stderr)")
        let obj = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out))) as? [String: Any]
        let ids = obj?["ids"] as? [Int], logits = (obj?["logits"] as? [NSNumber])?.map(\.floatValue)
        #expect(ids == [504, 3575, 282, 4649, 314])
        try #require(logits?.count == 49152)
        let top = logits!.indices.max { logits![$0] < logits![$1] }!
        #expect(r.stdout.contains("Paris"), "\(r.stdout) (top id \(top))")
    }

    @Test("importing the same GGUF again does nothing; a second directory is byte-identical")
    func importIsIdempotentAndDeterministic() throws {
        let m = try Self.requireModel()
        try #require(FileManager.default.fileExists(atPath: Self.gguf), "run scripts/get_smollm2.sh")
        let again = try runProcess(pilotBinary, ["model", "import", Self.gguf, "--out", m], timeout: 300)
        #expect(again.status == 0 && again.stdout.contains("nothing to do"), "\(again.stdout)\n\(again.stderr)")
    }

    @Test("a Hugging Face directory imports too and gives the same logits; an unknown chat template needs --chat-format")
    func importHuggingFaceDirectory() throws {
        let m = try Self.requireModel()
        let dir = TemporaryDirectory(); defer { dir.cleanup() }
        let src = dir.file("hf")
        try FileManager.default.createDirectory(atPath: src, withIntermediateDirectories: true)
        for f in ["config.json", "tokenizer.json", "tokenizer_config.json"] { try FileManager.default.copyItem(atPath: m + "/" + f, toPath: src + "/" + f) }
        try FileManager.default.createSymbolicLink(atPath: src + "/model.safetensors", withDestinationPath: m + "/model.safetensors")
        let out = dir.file("imported")
        let r = try runProcess(pilotBinary, ["model", "import", src, "--out", out], timeout: 300)
        try #require(r.status == 0, "\(r.stdout)\n\(r.stderr)")
        #expect(r.stdout.contains("134515008 parameters, chat format chatml"), "\(r.stdout)")
        var logits: [[Float]] = []
        for model in [m, out] {
            let l = try runProcess(pilotBinary, ["model", "logits", "--model", model, "--text", "Hello world", "--out", dir.file("l.json")], timeout: 300)
            try #require(l.status == 0, "\(l.stderr)")
            let obj = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir.file("l.json")))) as? [String: Any]
            logits.append(((obj?["logits"] as? [NSNumber]) ?? []).map(\.floatValue))
        }
        #expect(logits[0].count == 49152 && logits[0] == logits[1])

        // A template that is neither ChatML nor Llama-3 is refused before any weight is converted.
        try Data(#"{"chat_template": "{% for m in messages %}[INST] {{ m.content }} [/INST]{% endfor %}"}"#.utf8)
            .write(to: URL(fileURLWithPath: src + "/tokenizer_config.json"))
        let bad = try runProcess(pilotBinary, ["model", "import", src, "--out", dir.file("other")])
        #expect(bad.status == 1 && bad.stderr.contains("--chat-format chatml|llama3|plain"), "\(bad.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir.file("other")))
    }

    @Test("bad sources are refused by name and leave no output directory")
    func badSources() throws {
        let dir = TemporaryDirectory(); defer { dir.cleanup() }
        // An unsupported architecture in a Hugging Face directory.
        let hf = dir.file("mistral")
        try FileManager.default.createDirectory(atPath: hf, withIntermediateDirectories: true)
        try Data(#"{"model_type": "mistral", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 1, "num_attention_heads": 4, "vocab_size": 32}"#.utf8)
            .write(to: URL(fileURLWithPath: hf + "/config.json"))
        let out = dir.file("out")
        let r = try runProcess(pilotBinary, ["model", "import", hf, "--out", out])
        #expect(r.status == 1 && r.stderr.contains("mistral") && r.stderr.contains("llama"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: out))
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []).allSatisfy { !$0.contains(".tmp-") })

        // A GGUF cut in the middle of its tensor data.
        if let bytes = FileManager.default.contents(atPath: Self.gguf) {
            let cut = dir.file("cut.gguf")
            try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: cut))
            let c = try runProcess(pilotBinary, ["model", "import", cut, "--out", out], timeout: 120)
            #expect(c.status == 1 && c.stderr.contains("cut.gguf"), "\(c.stderr)")
            #expect(!FileManager.default.fileExists(atPath: out))
        }

        // A supported config and weights, but no tokenizer.json.
        let noTok = dir.file("notok")
        try FileManager.default.createDirectory(atPath: noTok, withIntermediateDirectories: true)
        for f in ["config.json", "model.safetensors"] {
            try FileManager.default.copyItem(atPath: repositoryRoot + "/Tests/Fixtures/lm/tiny-gqa-tied/" + f, toPath: noTok + "/" + f)
        }
        let t = try runProcess(pilotBinary, ["model", "import", noTok, "--out", out])
        #expect(t.status == 1 && t.stderr.contains("notok") && t.stderr.contains("tokenizer.json"), "\(t.stderr)")
        #expect(!FileManager.default.fileExists(atPath: out))

        // A missing source.
        let n = try runProcess(pilotBinary, ["model", "import", dir.file("nope.gguf"), "--out", out])
        #expect(n.status == 1 && n.stderr.contains("nope.gguf"), "\(n.stderr)")
    }
}
