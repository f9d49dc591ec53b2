import Foundation
import Testing
import PilotCore
import PilotLM
import PilotModel
import PilotTestSupport
import PilotTensor

/// SmolLM2-135M-Instruct against transformers (Tests/Fixtures/lm/smollm2_reference.json, made by
/// Tests/Fixtures/lm/make_lm_fixtures.py --smollm2). Needs the model directory (LMFixtures.smollm2; PILOT_SMOLLM2).
@Suite("SmolLM2 vs transformers", .serialized, .enabled(if: LMFixtures.smollm2 != nil))
struct SmolLM2Tests {
    struct Reference {
        var raw: [(text: String, ids: [Int32], logits: [Float])] = []
        var chat: [(question: String, promptIDs: [Int32], greedyIDs: [Int32], text: String)] = []
        var eos: Int32 = 2
    }

    static func reference() throws -> Reference {
        let data = try Data(contentsOf: URL(fileURLWithPath: LMFixtures.path("smollm2_reference.json")))
        guard let j = try JSONSerialization.jsonObject(with: data) as? [String: Any],
              let raw = j["raw"] as? [[String: Any]], let chat = j["chat"] as? [[String: Any]] else {
            throw PilotError.message("smollm2_reference.json: unexpected layout")
        }
        var r = Reference()
        r.eos = Int32(j["eos_token_id"] as? Int ?? 2)
        for e in raw {
            guard let b64 = e["logits_f32le_base64"] as? String, let blob = Data(base64Encoded: b64),
                  let ids = e["ids"] as? [Int] else { throw PilotError.message("smollm2_reference.json: bad raw entry") }
            let logits = blob.withUnsafeBytes { p in
                (0..<(blob.count / 4)).map { Float(bitPattern: UInt32(littleEndian: p.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) }
            }
            r.raw.append((e["text"] as? String ?? "", ids.map(Int32.init), logits))
        }
        for e in chat {
            guard let p = e["prompt_ids"] as? [Int], let g = e["greedy_ids"] as? [Int] else {
                throw PilotError.message("smollm2_reference.json: bad chat entry")
            }
            r.chat.append((e["question"] as? String ?? "", p.map(Int32.init), g.map(Int32.init), e["greedy_text"] as? String ?? ""))
        }
        return r
    }

    static func load(maxBatch: Int = 1, maxTokens: Int = 128, maxContext: Int = 256) throws -> LanguageModel {
        guard let dir = LMFixtures.smollm2 else { throw PilotError.notFound(file: "models/smollm2-135m-instruct", object: "") }
        return try LanguageModel.load(directory: dir, maxBatch: maxBatch, maxTokens: maxTokens, maxContext: maxContext)
    }

    @Test("last-position logits of 3 raw prompts equal transformers' to 1e-3; greedy chat answers equal")
    func matchesTransformers() throws {
        let ref = try Self.reference()
        let model = try Self.load()
        for r in ref.raw {
            let ours = try model.forward([r.ids], cache: model.makeCache(batch: 1), logits: .last)
            let d = maxAbsDiff(ours, r.logits)
            print("SmolLM2 \(r.text.debugDescription): \(r.ids.count) tokens, max |logit - transformers| = \(d) over \(ours.count)")
            #expect(d <= 1e-3)
        }
        let gen = Generator(model: model)
        for c in ref.chat {
            let ids = try gen.generate(promptIDs: c.promptIDs, maxNewTokens: 32, stopIDs: [ref.eos])
            // transformers keeps the eos it stopped on; ours returns it excluded
            let expected = c.greedyIDs.last == ref.eos ? Array(c.greedyIDs.dropLast()) : c.greedyIDs
            print("SmolLM2 chat \(c.question.debugDescription): \(ids.count) ids, stop: \(gen.stopReason); transformers: \(c.text.debugDescription)")
            #expect(ids == expected)
        }
    }

    /// #33 item 2: the frozen matrices in bf16 and q8 against transformers' f32 logits, on the same 3
    /// prompts. Measured 2026-12-07: bf16 max 0.11–0.13, mean 0.02–0.04; q8 max 0.38–0.69, mean 0.09–0.27
    /// (q8 rounds SmolLM2's Q4_1 values a second time). The bounds are about twice that; a wrong
    /// decoding or layout gives differences of several units.
    @Test("bf16 and q8 bases: logits of 3 prompts near transformers' f32, the same top-1; the same bits twice",
          arguments: [(BaseDType.bf16, Float(0.3), Float(0.08)), (BaseDType.q8, Float(1.5), Float(0.5))])
    func quantizedBases(dtype: BaseDType, maxBound: Float, meanBound: Float) throws {
        guard let dir = LMFixtures.smollm2 else { return }
        let ref = try Self.reference()
        let model = try LanguageModel.load(directory: dir, maxBatch: 1, maxTokens: 128, maxContext: 256, dtype: dtype)
        for r in ref.raw {
            let ours = try model.forward([r.ids], cache: model.makeCache(batch: 1), logits: .last)
            let again = try model.forward([r.ids], cache: model.makeCache(batch: 1), logits: .last)
            let d = maxAbsDiff(ours, r.logits)
            let mean = zip(ours, r.logits).reduce(Float(0)) { $0 + abs($1.0 - $1.1) } / Float(ours.count)
            print("SmolLM2 \(dtype.rawValue) \(r.text.debugDescription): max |logit - transformers f32| = \(d), mean \(mean)")
            #expect(d <= maxBound && mean <= meanBound)
            #expect(ours.indices.max { ours[$0] < ours[$1] } == r.logits.indices.max { r.logits[$0] < r.logits[$1] })
            #expect(ours.map(\.bitPattern) == again.map(\.bitPattern))
        }
    }

    /// The Q4_1 GGUF the HF directory was converted from (PILOT_SMOLLM2_GGUF): same weights after
    /// dequantizing, so the same logits; this checks load(gguf:) end to end (config from metadata, q/k rows).
    @Test("the GGUF it came from gives the same logits", .enabled(if: ProcessInfo.processInfo.environment["PILOT_SMOLLM2_GGUF"] != nil))
    func ggufMatchesTransformers() throws {
        let ref = try Self.reference()
        let path = ProcessInfo.processInfo.environment["PILOT_SMOLLM2_GGUF"] ?? ""
        let model = try LanguageModel.load(gguf: path, maxBatch: 1, maxTokens: 64, maxContext: 64)
        for r in ref.raw {
            let ours = try model.forward([r.ids], cache: model.makeCache(batch: 1), logits: .last)
            let d = maxAbsDiff(ours, r.logits)
            print("SmolLM2 GGUF \(r.text.debugDescription): max |logit - transformers| = \(d)")
            #expect(d <= 1e-3)
        }
    }

    /// Forward tokens/s at batch 4 × 128 (no assertion on time): threads from PILOT_BENCH_THREADS (default 1).
    /// Run by scripts/bench/bench_lm_forward.sh with PILOT_LM_BENCH=1.
    @Test("forward throughput (prints tokens/s)", .enabled(if: ProcessInfo.processInfo.environment["PILOT_LM_BENCH"] == "1"))
    func forwardThroughput() throws {
        let env = ProcessInfo.processInfo.environment
        let threads = Int(env["PILOT_BENCH_THREADS"] ?? "1") ?? 1
        let reps = Int(env["PILOT_BENCH_REPS"] ?? "3") ?? 3
        Parallel.configure(threads: threads)
        defer { Parallel.configure(threads: 1) }
        let B = 4, T = 128
        let model = try Self.load(maxBatch: B, maxTokens: T, maxContext: T)
        var rng = SplitMix64(seed: 1)
        let ids = (0..<B).map { _ in (0..<T).map { _ in Int32(rng.next() % UInt64(model.vocabSize)) } }
        let cache = model.makeCache(batch: B)
        _ = try model.forward(ids, cache: cache, logits: .last)   // warm-up
        var best = Double.infinity
        for _ in 0..<reps {
            cache.reset()
            let t0 = Date()
            _ = try ids.flatMap { $0 }.withUnsafeBufferPointer { try model.forward(tokens: $0, batch: B, cache: cache, logits: .last) }
            best = min(best, Date().timeIntervalSince(t0))
        }
        print(String(format: "BENCH ours threads=%d batch=%d seq=%d best=%.3fs tokens/s=%.1f", threads, B, T, best, Double(B * T) / best))
    }
}
