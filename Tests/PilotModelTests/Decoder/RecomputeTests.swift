import Foundation
import PilotLM
@testable import PilotModel
import PilotTensor
import PilotTestSupport
import Testing

/// Activation recomputation (`train.recompute_activations`): the same training, bit for bit, with
/// one shared set of layer activations instead of one per layer. Each case trains two models built
/// alike, one per mode, for a few steps on 1 and on 2 engine threads, and compares every loss, every
/// gradient after every step and the trained weights; and it checks that recompute mode stores
/// exactly the layer inputs plus one layer's activations.
@Suite("Activation recomputation", .serialized)
struct RecomputeTests {
    static let steps = 3, threadCounts = [1, 2]

    static func bits(_ x: Double) -> UInt64 { x.bitPattern }
    /// Floats of `a` and `b` whose bits differ (every float when the counts differ).
    static func differing(_ a: Tensor, _ b: Tensor) -> Int {
        guard a.count == b.count else { return max(a.count, b.count) }
        return (0..<a.count).reduce(0) { $0 + (a.pointer[$1].bitPattern == b.pointer[$1].bitPattern ? 0 : 1) }
    }

    /// The stored bytes of both modes: recompute keeps resid and one layer's set, the other mode one
    /// set per layer, so on = resid + (off − resid)/L, and on < off.
    static func expectOneLayerStored(off: Int, on: Int, lm: LanguageModel) {
        let resid = lm.resid.reduce(0) { $0 + $1.count } * MemoryLayout<Float>.size, L = lm.layers.count
        #expect(on < off, "recompute mode stores \(on) bytes, the other mode \(off)")
        #expect((off - resid) % L == 0 && on == resid + (off - resid) / L,
                "recompute mode stores \(on) bytes; the layer inputs are \(resid) and one layer's set \((off - resid) / L)")
    }

    /// Two multimodal models, without and with recomputation: losses and gradients after every step
    /// and the final weights are the same bits.
    static func compareTraining(_ make: (Bool) throws -> MLLM, batch: Batch) throws {
        engineThreadsLock.lock(); defer { engineThreadsLock.unlock() }
        defer { Parallel.configure(threads: 1) }
        for threads in threadCounts {
            Parallel.configure(threads: threads)
            let off = try make(false), on = try make(true)
            #expect(!off.lm.recomputesActivations && on.lm.recomputesActivations)
            expectOneLayerStored(off: off.storedActivationBytes, on: on.storedActivationBytes, lm: on.lm)
            for s in 0..<steps {
                let a = try off.trainStep(batch, learningRate: 1e-2), b = try on.trainStep(batch, learningRate: 1e-2)
                #expect(bits(a.total) == bits(b.total) && bits(a.ce) == bits(b.ce) && a.targets == b.targets,
                        "step \(s + 1) on \(threads) threads: loss \(a) without, \(b) with recomputation")
                let g = off.parameters.gradients, differ = differing(g, on.parameters.gradients)
                #expect(differ == 0, "step \(s + 1) on \(threads) threads: \(differ) of \(g.count) gradients differ")
                #expect((0..<g.count).contains { g.pointer[$0] != 0 }, "the gradients are not trivially zero")
            }
            let differ = differing(off.parameters.trainable, on.parameters.trainable)
            #expect(differ == 0, "\(differ) trained weights differ on \(threads) threads")
        }
    }

    @Test("built-in LM: LoRA and connector (stage 2) train the same bits")
    func builtInLoRA() throws {
        let c = tinyConfig()
        var o = ConnectorOptions(); o.crossTaskInit = .random
        try Self.compareTraining({ try MLLM(config: c, variant: .pilotStage2, options: o, trainable: .connectorAndLoRA, maxBatch: 2, seed: 3,
                                            recomputeActivations: $0) }, batch: tinyBatch(c, pixels: false))
    }

    /// Pretraining trains the built-in LM's own weights (norms, linears, embedding, head) through every
    /// layer down to the embedding, and the ViT on pixels.
    @Test("built-in LM: pretraining (every LM weight) trains the same bits")
    func builtInPretrain() throws {
        let c = tinyConfig()
        try Self.compareTraining({ try MLLM(config: c, variant: .mlp, trainable: .pretrain, maxBatch: 2, seed: 3,
                                            recomputeActivations: $0) }, batch: tinyBatch(c, pixels: true))
    }

    @Test("imported frozen LM: LoRA trains the same bits", arguments: [ConnectorVariant.pilotStage1, .dualLoRA])
    func importedBase(_ variant: ConnectorVariant) throws {
        let d = tinyBaseDirectory(); defer { d.cleanup() }
        let base = try PretrainedBase(directory: d.path)
        let c = tinyBaseConfig(base)
        try Self.compareTraining({ try MLLM(config: c, variant: variant, maxBatch: 2, seed: 3, base: base,
                                            recomputeActivations: $0) }, batch: tinyBatch(c, pixels: false))
    }

    /// The text engine of `pilot bench --model`: the frozen embedding ends the backward pass at layer 0
    /// without an input gradient.
    @Test("imported frozen LM, text only (bench --model): the same bits")
    func textLoRA() throws {
        engineThreadsLock.lock(); defer { engineThreadsLock.unlock() }
        defer { Parallel.configure(threads: 1) }
        let d = tinyBaseDirectory(); defer { d.cleanup() }
        let base = try PretrainedBase(directory: d.path)
        let B = 2, T = 10
        var rng = SeededRNG(seed: 4)
        let tokens = (0..<(B * T)).map { _ in Int32(rng.next() % 250) }
        for threads in Self.threadCounts {
            Parallel.configure(threads: threads)
            func make(_ on: Bool) throws -> TextLoRAModel {
                try TextLoRAModel(base: base, rank: 4, alpha: 8, maxBatch: B, seqLen: T, seed: 1, bInitStd: 0.1, recomputeActivations: on)
            }
            let off = try make(false), on = try make(true)
            Self.expectOneLayerStored(off: off.storedActivationBytes, on: on.storedActivationBytes, lm: on.lm)
            for s in 0..<Self.steps {
                let a = try off.trainStep(tokens, batch: B, learningRate: 1e-2), b = try on.trainStep(tokens, batch: B, learningRate: 1e-2)
                #expect(Self.bits(a) == Self.bits(b), "step \(s + 1) on \(threads) threads: CE \(a) without, \(b) with recomputation")
                let differ = Self.differing(off.parameters.gradients, on.parameters.gradients)
                #expect(differ == 0, "step \(s + 1) on \(threads) threads: \(differ) gradients differ")
            }
            let differ = Self.differing(off.parameters.trainable, on.parameters.trainable)
            #expect(differ == 0, "\(differ) trained weights differ on \(threads) threads")
        }
    }

    /// Evaluation decodes from the forward pass's keys and values: recompute mode copies them per
    /// layer (the layers share `qkvOut`); the copy holds the floats the other mode's view shows, and
    /// greedy decoding gives the same tokens.
    @Test("decoding from the forward pass: the same keys, values and tokens")
    func decodingCache() throws {
        let d = tinyBaseDirectory(); defer { d.cleanup() }
        let base = try PretrainedBase(directory: d.path)
        let c = tinyBaseConfig(base)
        let off = try MLLM(config: c, variant: .mlp, maxBatch: 2, seed: 3, base: base)
        let on = try MLLM(config: c, variant: .mlp, maxBatch: 2, seed: 3, base: base, recomputeActivations: true)
        var rng = SeededRNG(seed: 9)
        let visual = Batch.Visual.features((0..<(2 * c.visualTokens * c.visionWidth)).map { _ in Float(rng.normal()) })
        let prompts: [[Int32]] = [[1, 5, 9], [1, 7]]
        let batch = tinyBatch(c, pixels: false)
        _ = try off.prefill(batch); _ = try on.prefill(batch, keepKeysValues: true)
        let a = off.lm.forwardCache(), b = on.lm.forwardCache(), T = c.contextLength, KVD = c.kvHeadCount * c.headDim
        var differ = 0
        for l in 0..<c.layers {
            for s in 0..<2 {
                for t in 0..<T {
                    let x = a.slot(l, s) + t * a.stride, y = b.slot(l, s) + t * b.stride
                    for i in 0..<(2 * KVD) where x[i].bitPattern != y[i].bitPattern { differ += 1 }
                }
            }
        }
        #expect(differ == 0, "\(differ) key/value floats differ")
        let ta = try off.generate(visual: visual, prompts: prompts, maxNewTokens: 5)
        let tb = try on.generate(visual: visual, prompts: prompts, maxNewTokens: 5)
        #expect(ta == tb && ta.allSatisfy { $0.count == 5 })
    }
}
