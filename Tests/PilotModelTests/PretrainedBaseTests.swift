import Foundation
import PilotLM
@testable import PilotModel
import PilotTensor
import PilotTestSupport
import Testing

/// A copy of the tiny GQA, tied-embedding Llama fixture (made by transformers) with a tokenizer.json,
/// so it is a complete model directory for `PretrainedBase`.
func tinyBaseDirectory() -> TemporaryDirectory {
    let d = TemporaryDirectory("tiny-base")
    let src = repositoryRoot + "/Tests/Fixtures/lm/tiny-gqa-tied"
    for f in try! FileManager.default.contentsOfDirectory(atPath: src) where f != "expected.json" {
        try! FileManager.default.copyItem(atPath: src + "/" + f, toPath: d.file(f))
    }
    try! tinyByteTokenizer().tokenizerJSON().write(to: URL(fileURLWithPath: d.file("tokenizer.json")))
    let template = #"{"chat_template": "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"}"#
    try! Data(template.utf8).write(to: URL(fileURLWithPath: d.file("tokenizer_config.json")))
    return d
}

/// A byte-level BPE tokenizer of 256 ids (the tiny LM's vocabulary): 252 single-byte tokens in GPT-2's
/// byte-to-unicode alphabet, no merges, and <|endoftext|>, <|im_start|>, <|im_end|>, <pad>.
func tinyByteTokenizer() throws -> BPETokenizer {
    var printable: [Int] = Array(33...126) + Array(161...172) + Array(174...255)
    var chars: [Int: Int] = [:]
    for b in printable { chars[b] = b }
    var n = 0
    for b in 0..<256 where chars[b] == nil { chars[b] = 256 + n; n += 1 }
    printable.removeAll()
    let bytes = (0..<252).map { String(UnicodeScalar(UInt32(chars[$0]!))!) }
    let tokens = bytes + ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<pad>"]
    let types = [Int](repeating: 1, count: 252) + [3, 3, 3, 3]
    return try BPETokenizer(ggufTokens: tokens, merges: [], tokenTypes: types, preTokenizer: "gpt2",
                            bos: 253, eos: 254, unk: nil, pad: 255, addBOS: false, source: "test")
}

/// tinyConfig's vision side over the tiny base's LM (P = 4 visual tokens + 8 text tokens).
func tinyBaseConfig(_ base: PretrainedBase) -> ModelConfig {
    var c = base.modelConfig(tinyConfig())
    c.loraRank = 4; c.loraAlpha = 8; c.loraBInitStd = 0.1
    return c
}

@Suite("Multimodal model over an imported LM")
struct PretrainedBaseTests {
    @Test func configComesFromTheLMAndRefersToIt() throws {
        let d = tinyBaseDirectory(); defer { d.cleanup() }
        let base = try PretrainedBase(directory: d.path)
        let c = tinyBaseConfig(base)
        #expect(c.width == 64 && c.heads == 4 && c.kvHeadCount == 2 && c.vocabSize == 256 && c.layers == 2)
        #expect(c.lm?.sha256 == base.sha256 && c.lm?.path == d.path)
        // the built-in LM's JSON has none of the new keys (its config hash is unchanged)
        let json = String(decoding: try JSONEncoder().encode(ModelConfig.tiny), as: UTF8.self)
        #expect(!json.contains("kv_heads") && !json.contains("\"lm\"") && !json.contains("lora_targets"))
    }

    @Test(arguments: [ConnectorVariant.mlp, .pilotStage2, .dualLoRA])
    func gradientsMatchFiniteDifferences(_ variant: ConnectorVariant) throws {
        let d = tinyBaseDirectory(); defer { d.cleanup() }
        let base = try PretrainedBase(directory: d.path)
        let c = tinyBaseConfig(base)
        var o = ConnectorOptions(); o.crossTaskInit = .random
        let m = try MLLM(config: c, variant: variant, options: o, maxBatch: 2, seed: 3, base: base)
        #expect(m.parameters.frozenCount < 100_000, "the LM's weights are not parameters of the model")
        let batch = tinyBatch(c, pixels: false)
        let frozenBefore = Array(base.weights.bytes)
        _ = try m.forwardBackward(batch)
        var items: [(String, Tensor, Tensor)] = []
        for g in m.parameters.trainableGroups {
            items.append((g.name, try m.parameters.view(group: g.name), try m.parameters.gradientView(group: g.name)))
        }
        #expect(items.contains { $0.0 == "lora" })
        gradCheck(items, h: 1e-2, tol: 2e-2) { (try? m.loss(batch).total) ?? .nan }
        try m.trainStep(batch, learningRate: 1e-2)
        #expect(Array(base.weights.bytes) == frozenBefore, "the shared base is never written")
    }

    @Test func pretrainingTrainsVisionAndConnectorOnly() throws {
        let d = tinyBaseDirectory(); defer { d.cleanup() }
        let base = try PretrainedBase(directory: d.path)
        let c = tinyBaseConfig(base)
        let m = try MLLM(config: c, variant: .mlp, trainable: .pretrain, maxBatch: 2, seed: 3, base: base)
        #expect(Set(m.parameters.trainableGroups.map(\.name)) == ["vision", "connector/mlp"])
        #expect(!m.parameters.names.contains { $0.hasPrefix("lm/") })
        let batch = tinyBatch(c, pixels: true)
        _ = try m.forwardBackward(batch)
        var items: [(String, Tensor, Tensor)] = []
        for g in m.parameters.trainableGroups {
            items.append((g.name, try m.parameters.view(group: g.name), try m.parameters.gradientView(group: g.name)))
        }
        gradCheck(items, h: 2e-3, tol: 2e-2) { (try? m.loss(batch).total) ?? .nan }
    }

    /// The training forward (LoRA unmerged, on token embeddings) equals the same decoder's cached step
    /// over a copy of the weights with the LoRA merged in (the step is checked against transformers in
    /// Decoder/): the two paths of the one decoder agree.
    @Test func logitsEqualTheInferenceModelWithLoRAMerged() throws {
        let d = tinyBaseDirectory(); defer { d.cleanup() }
        let base = try PretrainedBase(directory: d.path)
        var c = tinyBaseConfig(base)
        c.contextLength = 4 + 8
        let B = 2, T = c.contextLength, C = c.width, V = c.vocabSize
        let store = ParameterStore(specs: LanguageModel.parameterSpecs(c, loraBranches: [""]), trainableGroups: { $0 == "lora" }, seed: 11)
        let lm = LanguageModel(cfg: c, store: store, maxBatch: B, loraBranches: [""], base: base.weights)
        var rng = SeededRNG(seed: 2)
        let tokens = (0..<(B * T)).map { _ in Int32(rng.next() % UInt64(V)) }
        lm.prepare(localMix: 1)
        tokens.withUnsafeBufferPointer { lm.embed(out: lm.resid[0].pointer, tokens: $0.baseAddress!, count: B * T) }
        lm.forward(batch: B, lengths: nil)
        let targets = [Int32](repeating: 0, count: B * T)
        _ = targets.withUnsafeBufferPointer { lm.headLoss(batch: B, targets: $0.baseAddress!, backward: false) }
        let ours = Array(UnsafeBufferPointer(start: lm.logits.pointer, count: B * T * V))

        // reference: W_hf[out, in] += s · (A·B)ᵀ on a copy of the weights
        let merged = LlamaWeights(config: base.llama)
        merged.bytes.copyMemory(from: UnsafeRawBufferPointer(base.weights.bytes))
        let s = c.loraScale
        for l in 0..<c.layers {
            let w = merged.layers[l]
            let targetsHF: [(String, String, FrozenMatrix)] = [
                ("attn", "q", w.qProj), ("attn", "k", w.kProj), ("attn", "v", w.vProj), ("attn", "o", w.oProj),
                ("mlp", "gate", w.gateProj), ("mlp", "up", w.upProj), ("mlp", "down", w.downProj)]
            for (blk, n, matrix) in targetsHF {
                let ptr = UnsafeMutablePointer(mutating: matrix.float32!)
                let a = try store.tensor(named: "lm/layers/\(l)/\(blk)/\(n)/lora_a"), bm = try store.tensor(named: "lm/layers/\(l)/\(blk)/\(n)/lora_b")
                let I = a.shape[0], R = a.shape[1], O = bm.shape[1]
                // (A·B)ᵀ [O, I] = Bᵀ·Aᵀ
                sgemm(transA: true, transB: true, m: O, n: I, k: R, alpha: s, a: bm.pointer, lda: O, b: a.pointer, ldb: R, beta: 1, c: ptr, ldc: I)
            }
        }
        let ref = try LanguageModel(llama: base.llama, weights: merged, maxBatch: B, maxTokens: T, maxContext: T)
        let rows = (0..<B).map { b in Array(tokens[(b * T)..<((b + 1) * T)]) }
        let theirs = try ref.forward(rows, cache: ref.makeCache(batch: B))
        let diff = maxAbsDiff(ours, theirs)
        #expect(diff < 1e-4, "max |Δlogit| = \(diff)")
        #expect(theirs.map(abs).max()! > 1e-3, "the reference logits are not trivially zero")
    }

    @Test func greedyDecodingWithTheCacheEqualsRecomputing() throws {
        let d = tinyBaseDirectory(); defer { d.cleanup() }
        let base = try PretrainedBase(directory: d.path)
        let c = tinyBaseConfig(base)
        let m = try MLLM(config: c, variant: .mlp, maxBatch: 2, seed: 3, base: base)
        var rng = SeededRNG(seed: 9)
        let visual = Batch.Visual.features((0..<(2 * c.visualTokens * c.visionWidth)).map { _ in Float(rng.normal()) })
        let prompts: [[Int32]] = [[1, 5, 9], [1, 7]]
        let a = try m.generate(visual: visual, prompts: prompts, maxNewTokens: 5, useKVCache: true)
        let b = try m.generate(visual: visual, prompts: prompts, maxNewTokens: 5, useKVCache: false)
        #expect(a == b && a.allSatisfy { $0.count == 5 })
    }

    /// The chat layout puts the image after the first `visual_position` text tokens (system turn and
    /// user tag): gradients through the moved visual block, the split embedding backward, and cached
    /// decoding with prompts that straddle it.
    @Test(arguments: [ConnectorVariant.mlp, .pilotStage1])
    func imageInsideTheTextGradientsAndDecoding(_ variant: ConnectorVariant) throws {
        let d = tinyBaseDirectory(); defer { d.cleanup() }
        let base = try PretrainedBase(directory: d.path)
        var c = tinyBaseConfig(base)
        c.visualPosition = 2
        let m = try MLLM(config: c, variant: variant, maxBatch: 2, seed: 3, base: base)
        let batch = tinyBatch(c, pixels: false)
        let shifted = try m.loss(batch).total
        var c0 = c; c0.visualPosition = nil
        let m0 = try MLLM(config: c0, variant: variant, maxBatch: 2, seed: 3, base: base)
        #expect(try m0.loss(batch).total != shifted, "moving the visual block changes the function")
        _ = try m.forwardBackward(batch)
        var items: [(String, Tensor, Tensor)] = []
        for g in m.parameters.trainableGroups {
            items.append((g.name, try m.parameters.view(group: g.name), try m.parameters.gradientView(group: g.name)))
        }
        gradCheck(items, h: 1e-2, tol: 2e-2) { (try? m.loss(batch).total) ?? .nan }
        var rng = SeededRNG(seed: 9)
        let visual = Batch.Visual.features((0..<(2 * c.visualTokens * c.visionWidth)).map { _ in Float(rng.normal()) })
        let prompts: [[Int32]] = [[1, 5, 9, 4], [1, 7, 3]]
        let a = try m.generate(visual: visual, prompts: prompts, maxNewTokens: 4, useKVCache: true)
        let b = try m.generate(visual: visual, prompts: prompts, maxNewTokens: 4, useKVCache: false)
        #expect(a == b && a.allSatisfy { $0.count == 4 })
        #expect(throws: (any Error).self) { _ = try m.generate(visual: visual, prompts: [[1, 5], [1, 7, 3]], maxNewTokens: 1) }
    }

    @Test func aChangedModelDirectoryIsRefusedByName() throws {
        let d = tinyBaseDirectory(); defer { d.cleanup() }
        let base = try PretrainedBase(directory: d.path)
        let ref = base.reference
        let h = FileHandle(forWritingAtPath: d.file("config.json"))!
        h.seekToEndOfFile(); h.write(Data(" ".utf8)); try h.close()
        #expect(throws: (any Error).self) { _ = try PretrainedBase(reference: ref, context: "base.h5") }
        do { _ = try PretrainedBase(reference: ref, context: "base.h5") } catch {
            #expect("\(error)".contains("base.h5") && "\(error)".contains("changed"))
        }
        var missing = ref; missing.path = d.path + "-missing"
        do { _ = try PretrainedBase(reference: missing, context: "base.h5"); Issue.record("no error") } catch {
            #expect("\(error)".contains("does not exist on this machine") && "\(error)".contains("base.h5"))
        }
    }

    @Test func aLoRATargetTheLMLacksIsRefused() throws {
        var c = ModelConfig.tiny
        c.loraTargets = ["q_proj", "v"]
        do { try c.validate(); Issue.record("no error") } catch {
            #expect("\(error)".contains("q_proj") && "\(error)".contains("write 'q'"))
        }
        c.loraTargets = ["q", "v"]
        try c.validate()
        #expect(c.loraTargetNames == ["q", "v"])
    }
}
