import Foundation
import PilotComm
import PilotCore
import PilotData
import PilotFederation
import PilotPretrain
import PilotModel
import PilotTestSupport
import Testing

/// The tiny vu scenario in memory (100 pretraining examples, 30 test examples per task).
let tinyScenario: GeneratedScenario = try! ScenarioGenerator.generate(ScenarioConfig(scenario: .vu, seed: 3, size: .tiny))

@Suite("batching and evaluation helpers")
struct BatchingTests {
    @Test("a batch carries CHW pixels in [-1, 1], the text ids, answer+EOS targets and lengths")
    func batchLayout() throws {
        let cfg = ModelPreset.micro.config
        let tok = tinyScenario.tokenizer
        let examples = Array(tinyScenario.pretrain.examples.prefix(5))
        let prepared = try Batcher(config: cfg, tokenizer: tok).prepare(examples)
        let idx = [3, 0, 4]
        let batch = try prepared.batch(idx)
        let P = cfg.visualTokens, T = cfg.contextLength, L = T - P, S = cfg.imageSize
        #expect(batch.size == 3 && batch.tokens.count == 3 * L && batch.targets.count == 3 * T)
        guard case let .pixels(px) = batch.visual else { Issue.record("expected pixels"); return }
        #expect(px.count == 3 * 3 * S * S)
        for (b, i) in idx.enumerated() {
            let e = examples[i], enc = try tok.encode(e)
            let img = e.image.pixels
            for (y, x, c) in [(0, 0, 0), (5, 17, 1), (31, 31, 2), (12, 3, 0)] {
                #expect(px[((b * 3 + c) * S + y) * S + x] == Float(img[(y * S + x) * 3 + c]) / 127.5 - 1)
            }
            #expect(Array(batch.tokens[(b * L)..<((b + 1) * L)]) == enc.ids)
            #expect(batch.lengths?[b] == Int32(P + enc.length))
            let targets = batch.targets[(b * T)..<((b + 1) * T)].filter { $0 >= 0 }
            #expect(targets.count == prepared.targetCounts[i] && targets.last == tok.eosID)
            #expect(tok.decodeAnswer(Array(targets)) == e.answer)
            // The first target sits at the SEP position: the output there predicts the first answer token.
            let first = batch.targets[(b * T)..<((b + 1) * T)].firstIndex { $0 >= 0 }! - b * T
            #expect(first == P + enc.promptLength - 1)
            #expect(prepared.prompt(i) == tok.encodePrompt(e.instruction))
        }
        #expect(px.allSatisfy { $0 >= -1 && $0 <= 1 })
    }

    @Test("a vocabulary larger than the model's is refused")
    func vocabTooSmall() throws {
        var cfg = ModelPreset.micro.config
        cfg.vocabSize = 64
        #expect(throws: PilotError.self) { _ = try Batcher(config: cfg, tokenizer: tinyScenario.tokenizer) }
    }

    @Test("scoring: reference answers score 1, examples of another task are refused")
    func scoring() throws {
        let vqa = tinyScenario.tests[.vqa]!.examples
        let perfect = try Evaluation.score(predictions: vqa.map(\.answer), examples: vqa, task: .vqa)
        #expect(perfect.score == 1 && perfect.perItem.count == vqa.count)
        let grounding = tinyScenario.tests[.grounding]!.examples
        #expect(throws: PilotError.self) { _ = try Evaluation.score(predictions: grounding.map(\.answer), examples: grounding, task: .vqa) }
    }

    @Test("evaluate decodes every example in batches and scores it with the task's metric")
    func evaluateUntrained() throws {
        let cfg = ModelPreset.micro.config
        let model = try MLLM(config: cfg, variant: .mlp, maxBatch: 4, seed: 2)
        let examples = Array(tinyScenario.tests[.grounding]!.examples.prefix(7))
        let r = try Evaluation.evaluate(model: model, examples: examples, tokenizer: tinyScenario.tokenizer, task: .grounding,
                                        maxNewTokens: 5)
        #expect(r.predictions.count == 7 && r.metric.perItem.count == 7 && r.metric.kind == .accAtIoU50)
        #expect(r.metric.score >= 0 && r.metric.score <= 1)
        // The free function is the same computation.
        let m = try evaluate(model: model, examples: examples, tokenizer: tinyScenario.tokenizer, task: .grounding, maxNewTokens: 5)
        #expect(m == r.metric)
    }
}

@Suite("data-parallel pretraining", .serialized)
struct PretrainingTests {
    static func parameters(steps: Int = 3, batch: Int = 7) -> PretrainingParameters {
        var p = PretrainingParameters()
        p.steps = steps; p.batchSize = batch; p.learningRate = 3e-3; p.warmupSteps = 1; p.seed = 9; p.logEvery = 1
        return p
    }

    static func trainer(_ comm: any Communicator, steps: Int = 3) throws -> Pretrainer {
        try Pretrainer(parameters: parameters(steps: steps), config: ModelPreset.micro.config,
                       examples: tinyScenario.pretrain.examples, tokenizer: tinyScenario.tokenizer, communicator: comm)
    }

    /// Gradient of the first global batch (7 sequences: 3 on rank 0, 4 on rank 1 when P = 2) and the loss.
    static func firstGradient(ranks: Int) throws -> [(grad: [Float], loss: Double)] {
        try InProcessCommunicator.run(size: ranks) { comm in
            let t = try PretrainingTests.trainer(comm)
            let loss = try t.computeGradients(step: 0)
            return (t.model.parameters.gradients.values, loss)
        }
    }

    @Test("rank slices cover a batch exactly once")
    func slices() {
        for p in 1...5 { for b in [1, 4, 7, 32] {
            let parts = (0..<p).map { Pretrainer.slice(rank: $0, size: p, batch: b) }
            #expect(parts.flatMap { Array($0) } == Array(0..<b))
        } }
    }

    @Test("2 ranks: the summed gradient is bitwise reproducible, equal on both ranks, and within 1e-5 of 1 rank")
    func gradientEquivalence() throws {
        let a = try Self.firstGradient(ranks: 2), b = try Self.firstGradient(ranks: 2), one = try Self.firstGradient(ranks: 1)
        #expect(a[0].grad == a[1].grad && a[0].loss == a[1].loss)
        #expect(a[0].grad == b[0].grad && a[0].loss == b[0].loss)
        let g1 = one[0].grad
        let scale = max(1, g1.map(abs).max()!)
        let diff = maxAbsDiff(a[0].grad, g1)
        #expect(diff <= 1e-5 * scale, "max |g(P=2) − g(P=1)| = \(diff), max |g| = \(scale)")
        #expect(a[0].grad != g1 || diff == 0)  // (different summation order may or may not change bits)
        #expect(abs(a[0].loss - one[0].loss) <= 1e-5 * max(1, abs(one[0].loss)))
        #expect(g1.contains { $0 != 0 })
    }

    @Test("3 steps on 2 ranks: identical weights on both ranks and across runs; loss close to 1 rank")
    func trainingReproducible() throws {
        func run(_ ranks: Int) throws -> [(weights: [Float], frozen: [Float], losses: [Double])] {
            try InProcessCommunicator.run(size: ranks) { comm in
                let t = try PretrainingTests.trainer(comm)
                try t.run()
                return (t.model.parameters.trainable.values, t.model.parameters.frozen.values, t.losses)
            }
        }
        let a = try run(2), b = try run(2), one = try run(1)
        #expect(a[0].weights == a[1].weights)
        #expect(a[0].weights == b[0].weights && a[0].losses == b[0].losses)
        #expect(a[0].losses.count == 3)
        for (x, y) in zip(a[0].losses, one[0].losses) { #expect(abs(x - y) <= 1e-4 * max(1, abs(y)), "\(a[0].losses) vs \(one[0].losses)") }
        #expect(a[0].losses.last! < a[0].losses.first!, "loss did not fall: \(a[0].losses)")
    }
}

@Suite("base checkpoint", .serialized)
struct BaseCheckpointTests {
    /// What the tests need from a 2-step one-rank pretraining run that wrote `path`.
    struct Snapshot: Sendable {
        var weights: [String: [Float]]
        var config: ModelConfig
        var parameters: PretrainingParameters
        var finalLoss: Double
        var examples: Int
        var ce: Double
    }

    static func trainedBase(_ dir: TemporaryDirectory) throws -> (Snapshot, String) {
        let path = dir.file("base.h5")
        let snap = try InProcessCommunicator.run(size: 1) { comm -> Snapshot in
            let t = try PretrainingTests.trainer(comm, steps: 2)
            try t.run()
            let meta = BaseCheckpointMetadata(scenario: "vu", dataSeed: 3, examples: t.data.count, training: t.parameters,
                                              worldSize: 1, finalLoss: t.finalLoss, testScores: ["vqa": 0.25])
            try BaseCheckpoint.write(model: t.model, tokenizer: tinyScenario.tokenizer, metadata: meta, lossCurve: t.losses, to: path)
            var w: [String: [Float]] = [:]
            for n in t.model.parameters.names { w[n] = try t.model.tensor(named: n).values }
            return Snapshot(weights: w, config: t.model.config, parameters: t.parameters, finalLoss: t.finalLoss,
                            examples: t.data.count, ce: try t.model.loss(t.data.batch(0..<7)).ce)
        }[0]
        return (snap, path)
    }

    @Test("write → load as .mlp gives the same weights, tokenizer, metadata and loss")
    func roundTrip() throws {
        let dir = TemporaryDirectory(); defer { dir.cleanup() }
        let (t, path) = try Self.trainedBase(dir)
        let (m, codec) = try BaseCheckpoint.load(path: path, variant: .mlp, maxBatch: 7)
        let tok = try #require(codec as? WordLevelCodec).tokenizer
        #expect(tok == tinyScenario.tokenizer)
        for (name, values) in t.weights {
            #expect(try m.tensor(named: name).values == values, "\(name)")
        }
        // LoRA starts at B = 0: the LoRA model computes exactly the base's function.
        let data = try Batcher(config: m.config, tokenizer: tok).prepare(tinyScenario.pretrain.examples)
        #expect(abs(try m.loss(data.batch(0..<7)).ce - t.ce) < 1e-5)
        let (cfg, meta) = try BaseCheckpoint.readMetadata(path: path)
        #expect(cfg == t.config)
        #expect(meta.training == t.parameters && meta.scenario == "vu" && meta.dataSeed == 3 && meta.worldSize == 1)
        #expect(meta.testScores == ["vqa": 0.25] && meta.finalLoss == t.finalLoss && meta.examples == t.examples)
    }

    @Test("Pilot stage 1 and 2 and FedDPA start their adapters from the base connector")
    func otherVariants() throws {
        let dir = TemporaryDirectory(); defer { dir.cleanup() }
        let (t, path) = try Self.trainedBase(dir)
        func base(_ n: String) -> [Float] { t.weights[n]! }
        let suffixes = ["fc1/weight", "fc1/bias", "fc2/weight", "fc2/bias"]
        let (s1, _) = try BaseCheckpoint.load(path: path, variant: .pilotStage1, maxBatch: 2)
        for s in suffixes {
            let want = base("connector/mlp/" + s)
            #expect(try s1.tensor(named: "connector/task_adapter/" + s).values == want)
            #expect(try s1.tensor(named: "connector/client_adapter/" + s).values == want)
        }
        var opts = ConnectorOptions(); opts.localTask = 1
        let (s2, _) = try BaseCheckpoint.load(path: path, variant: .pilotStage2, options: opts, maxBatch: 2)
        for s in suffixes {
            let want = base("connector/mlp/" + s)
            for k in 0..<3 { #expect(try s2.tensor(named: "connector/task_adapters/\(k)/" + s).values == want) }
            for k in [0, 2] { #expect(try s2.tensor(named: "connector/cross_task_adapters/\(k)/" + s).values == want) }
        }
        let (dpa, _) = try BaseCheckpoint.load(path: path, variant: .dualLoRA, maxBatch: 2)
        for name in ["lm/lm_head/weight", "vision/patch_embed/weight", "connector/mlp/fc2/weight", "lm/layers/0/attn/q/weight"] {
            #expect(try dpa.tensor(named: name).values == base(name), "\(name)")
            if !name.hasPrefix("connector/") { #expect(try s2.tensor(named: name).values == base(name), "\(name)") }
        }
    }

    @Test("a file that is not a base checkpoint is refused with a clear message")
    func notABase() throws {
        let dir = TemporaryDirectory(); defer { dir.cleanup() }
        let m = try MLLM(config: ModelPreset.micro.config, variant: .mlp, maxBatch: 1)
        try m.save(to: dir.file("params.h5"))
        #expect(throws: PilotError.self) { _ = try BaseCheckpoint.load(path: dir.file("params.h5"), variant: .mlp, maxBatch: 1) }
    }
}
