import Foundation
import Testing
import PilotCore
import PilotLM
import PilotTestSupport

/// #34 item 1, end to end: hostile files given to the `pilot` binary (PILOT_BIN, else .build/release/pilot)
/// held to 1 GiB of address space (`ulimit -v 1048576`). Each must end in pilot's own error (exit 1,
/// "pilot: error: in `pilot model …`: ", naming the file), not in a signal or an allocation failure;
/// the clean files must work under the same limit, so the limit itself is not what refuses them.
@Suite("Hostile model files in a pilot limited to 1 GiB", .serialized)
struct HostileModelLimitTests {
    static func limited(_ arguments: [String]) throws -> ProcessResult {
        try runProcess("/bin/bash", ["-c", "ulimit -v 1048576 && exec \"$0\" \"$@\"", pilotBinary] + arguments,
                       environment: ["OPENBLAS_NUM_THREADS": "1"], timeout: 120)
    }

    static func expectRefused(_ r: ProcessResult, _ command: String, naming: [String], sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(r.status == 1 && r.stderr.contains("pilot: error: in `pilot \(command)`: "),
                "exit \(r.status), stderr: \(r.stderr)", sourceLocation: sourceLocation)
        for n in naming { #expect(r.stderr.contains(n), "'\(n)' not in: \(r.stderr)", sourceLocation: sourceLocation) }
    }

    @Test("model info and model import under ulimit -v 1 GiB: PilotErrors naming the file, clean files work")
    func underAMemoryLimit() throws {
        try #require(FileManager.default.isExecutableFile(atPath: pilotBinary), "no pilot binary at \(pilotBinary): build it (swift build -c release) or set PILOT_BIN")
        let tmp = TemporaryDirectory("hostile-limit"); defer { tmp.cleanup() }
        let clean = try HostileModelTests.modelDirectory(tmp, "clean")
        let ok = try Self.limited(["model", "info", "--model", clean])
        #expect(ok.status == 0 && ok.stdout.contains("2 layers, hidden 64"), "exit \(ok.status): \(ok.stdout)\(ok.stderr)")

        // Sizes within the caps whose weights (4 TiB, or 2^10 layers) the file does not hold.
        let huge = try HostileModelTests.modelDirectory(tmp, "huge", config: ["vocab_size": 1 << 24, "hidden_size": 1 << 16, "intermediate_size": 1 << 18])
        Self.expectRefused(try Self.limited(["model", "info", "--model", huge]), "model info", naming: [huge + "/model.safetensors", "model.embed_tokens.weight"])
        let layers = try HostileModelTests.modelDirectory(tmp, "layers", config: ["num_hidden_layers": 1 << 10])
        Self.expectRefused(try Self.limited(["model", "info", "--model", layers]), "model info", naming: [layers + "/model.safetensors", "model.layers.2."])
        // Sizes beyond the caps, and a safetensors header length of 2^62.
        let over = try HostileModelTests.modelDirectory(tmp, "over", config: ["num_hidden_layers": 1 << 24])
        Self.expectRefused(try Self.limited(["model", "info", "--model", over]), "model info", naming: [over + "/config.json", "num_hidden_layers"])
        let header = try HostileModelTests.modelDirectory(tmp, "header")
        var st = [UInt8](try Data(contentsOf: URL(fileURLWithPath: header + "/model.safetensors")))
        putLE(UInt64(1) << 62, into: &st, at: 0)
        try write(st, to: header + "/model.safetensors")
        Self.expectRefused(try Self.limited(["model", "info", "--model", header]), "model info", naming: [header + "/model.safetensors", "header"])

        // GGUF imports: clean, a zero head count, 2^40 tensors, and a vocabulary array of 2^24 strings the file cannot hold.
        let out = tmp.file("out")
        let g = try HostileFixtures.gguf()
        try write(g.build().bytes, to: tmp.file("clean.gguf"))
        let imported = try Self.limited(["model", "import", tmp.file("clean.gguf"), "--out", out])
        #expect(imported.status == 0 && imported.stdout.contains("90432 parameters"), "exit \(imported.status): \(imported.stdout)\(imported.stderr)")
        #expect(try Self.limited(["model", "info", "--model", out]).status == 0)
        try FileManager.default.removeItem(atPath: out)
        var h0 = g
        h0.metadata("llama.attention.head_count", .uint(0))
        try write(h0.build().bytes, to: tmp.file("h0.gguf"))
        Self.expectRefused(try Self.limited(["model", "import", tmp.file("h0.gguf"), "--out", out]), "model import", naming: [tmp.file("h0.gguf"), "num_attention_heads 0"])
        let (bytes, fields, _) = g.build()
        for (label, value) in [("tensor count", UInt64(1) << 40), ("element count of tokenizer.ggml.tokens", UInt64(1) << 24)] {
            var b = bytes
            let f = try #require(fields.first { $0.label == label })
            putLE(value, into: &b, at: f.offset)
            let path = tmp.file("\(label.replacingOccurrences(of: " ", with: "_")).gguf")
            try write(b, to: path)
            Self.expectRefused(try Self.limited(["model", "import", path, "--out", out]), "model import", naming: [path, "\(value)"])
        }
        #expect(!FileManager.default.fileExists(atPath: out))
    }
}
