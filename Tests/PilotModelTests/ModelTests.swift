import PilotModel
import PilotTensor
import Testing

/// A configuration small enough for finite differences: P = 4 visual tokens, 8 text tokens, width 16.
func tinyConfig() -> ModelConfig {
    var c = ModelConfig()
    c.imageSize = 8; c.patchSize = 4; c.channels = 3
    c.visionWidth = 8; c.visionLayers = 1; c.visionHeads = 2; c.visionMLPHidden = 16
    c.width = 16; c.layers = 2; c.heads = 2; c.ffnHidden = 24; c.vocabSize = 32; c.contextLength = 12
    c.loraRank = 4; c.loraAlpha = 8; c.loraBInitStd = 0.1; c.adapterHidden = 12
    return c
}

/// Two sequences, the second right-padded (length 10 of 12); answers on the last text positions.
func tinyBatch(_ c: ModelConfig, pixels: Bool, seed: UInt64 = 5) -> Batch {
    var rng = SeededRNG(seed: seed)
    let B = 2, P = c.visualTokens, T = c.contextLength, L = T - P
    let tokens = (0..<(B * L)).map { _ in Int32(rng.next() % UInt64(c.vocabSize)) }
    let targets = Batch.answerTargets(tokens: tokens, batch: B, visualTokens: P, contextLength: T, answerStart: [4, 3], textLength: [8, 6])
    let visual: Batch.Visual = pixels
        ? .pixels((0..<(B * c.channels * c.imageSize * c.imageSize)).map { _ in Float(rng.normal()) })
        : .features((0..<(B * P * c.visionWidth)).map { _ in Float(rng.normal()) })
    return Batch(size: B, visual: visual, tokens: tokens, targets: targets, lengths: [12, 10])
}

struct VariantCase: CustomTestStringConvertible, Sendable {
    let variant: ConnectorVariant
    let trainable: TrainableSelection
    let topK: Int?
    let pixels: Bool
    var testDescription: String { "\(variant.rawValue) \(trainable) topK=\(topK.map(String.init) ?? "dense")\(pixels ? " pixels" : "")" }
}

@Suite("Whole model")
struct ModelTests {
    static let cases: [VariantCase] = [
        .init(variant: .mlp, trainable: .variantDefault, topK: nil, pixels: false),
        .init(variant: .mlp, trainable: .pretrain, topK: nil, pixels: true),
        .init(variant: .pilotStage1, trainable: .variantDefault, topK: nil, pixels: false),
        .init(variant: .pilotStage2, trainable: .connectorAndLoRA, topK: nil, pixels: false),
        .init(variant: .pilotStage2, trainable: .variantDefault, topK: 2, pixels: false),
        .init(variant: .dualLoRA, trainable: .variantDefault, topK: nil, pixels: false),
    ]

    @Test(arguments: cases) func gradientsMatchFiniteDifferences(_ v: VariantCase) throws {
        let c = tinyConfig()
        var o = ConnectorOptions()
        o.routerTopK = v.topK
        o.crossTaskInit = .random   // distinct adapters make a stronger check
        o.lambdaDiff = 1            // make the difference loss visible next to CE
        let m = try MLLM(config: c, variant: v.variant, options: o, trainable: v.trainable, maxBatch: 2, seed: 3)
        let batch = tinyBatch(c, pixels: v.pixels)
        let l = try m.forwardBackward(batch)
        #expect(l.targets == 4 + 3)
        if v.variant == .pilotStage1 { #expect(l.diff > 0) }
        if v.variant == .pilotStage2 { #expect(l.balance > 0 && l.z > 0) }
        var items: [(String, Tensor, Tensor)] = []
        for g in m.parameters.trainableGroups {
            items.append((g.name, try m.parameters.view(group: g.name), try m.parameters.gradientView(group: g.name)))
        }
        #expect(!items.isEmpty)
        gradCheck(items, h: v.pixels ? 2e-3 : 1e-2, tol: 2e-2) { (try? m.loss(batch).total) ?? .nan }
    }

    @Test func frozenParametersAreBitIdenticalAfterAStep() throws {
        let c = tinyConfig()
        var o = ConnectorOptions(); o.localTask = 1
        let m = try MLLM(config: c, variant: .pilotStage2, options: o, maxBatch: 2, seed: 4)
        // other tasks' adapters and the client adapter are frozen; the local one trains
        #expect(try m.parameters.entry("connector/task_adapters/0/fc1/weight").trainable == false)
        #expect(try m.parameters.entry("connector/task_adapters/2/fc2/bias").trainable == false)
        #expect(try m.parameters.entry("connector/client_adapter/fc1/weight").trainable == false)
        #expect(try m.parameters.entry("connector/task_adapters/1/fc1/weight").trainable == true)
        #expect(try m.parameters.entry("connector/cross_task_adapters/0/fc1/weight").trainable == true)
        #expect(try m.parameters.entry("lm/layers/1/mlp/down/lora_b").trainable == true)
        let frozenBefore = m.parameters.frozen.values, trainBefore = m.parameters.trainable.values
        let batch = tinyBatch(c, pixels: false)
        try m.trainStep(batch, learningRate: 1e-2)
        try m.trainStep(batch, learningRate: 1e-2)
        let frozenAfter = m.parameters.frozen.values
        #expect(frozenBefore.map(\.bitPattern) == frozenAfter.map(\.bitPattern))
        #expect(trainBefore != m.parameters.trainable.values)
    }

    @Test func sameSeedGivesBitIdenticalResults() throws {
        let c = tinyConfig()
        func run() throws -> ([Float], Double) {
            let m = try MLLM(config: c, variant: .pilotStage2, maxBatch: 2, seed: 7)
            var last = 0.0
            for _ in 0..<3 { last = try m.trainStep(tinyBatch(c, pixels: false), learningRate: 1e-2).total }
            return (m.parameters.trainable.values, last)
        }
        let (a, la) = try run(), (b, lb) = try run()
        #expect(la == lb && a.map(\.bitPattern) == b.map(\.bitPattern))
    }

    @Test func namedViewsAreStableAndContiguous() throws {
        let m = try MLLM(config: .tiny, variant: .pilotStage2, options: { var o = ConnectorOptions(); o.clientAdapterInStage2 = .trainable; return o }(),
                         trainable: .connectorAndLoRA, maxBatch: 1)
        // the JAX reference's trainable set: 905,600 parameters
        #expect(m.parameters.trainableCount == 905_600)
        #expect(m.parameters.frozenCount - (m.parameters.entries.filter { $0.group == "vision" }.reduce(0) { $0 + $1.count }) == 3_426_560)
        let lora = try m.trainableView(group: "lora")
        #expect(lora.count == 312_320)
        #expect(try m.parameters.view(prefix: "lm/").count == 312_320)
        let q = try m.tensor(named: "lm/layers/3/attn/q/lora_a")
        #expect(q.shape == [256, 16])
        #expect(q.offset >= lora.offset && q.offset + q.count <= lora.offset + lora.count)
        #expect(try m.trainableView(group: "connector/cross_task_adapters").count == 2 * 98_816)
        #expect(throws: (any Error).self) { try m.tensor(named: "lm/layers/9/attn/q/lora_a") }
    }
}
