import Foundation
import PilotCore
import PilotHDF5

private typealias Names = ConnectorNames

/// Loads a `jax_ref.py --dump-h5` file (../shared/bench): the stage-2 CT-MoA model's weights, its batch
/// and the first three losses. Names map as
/// `train/conn_W1[a]` → `connector/<adapter a>/fc1/weight` (adapter order client,A1,A2,A3,C2,C3 with
/// A_i = task i−1 and C_i = cross-task adapter of task i−1), `train/lora/<l>/<n>/A` → `lm/layers/<l>/…/<n>/lora_a`,
/// `frozen/layers/<l>/W<n>` → `lm/layers/<l>/…/<n>/weight`, `frozen/embed`, `frozen/lm_head`, `frozen/final_norm`.
public struct JAXReference {
    public let config: ModelConfig
    public let options: ConnectorOptions
    public let batch: Batch
    public let learningRate: Float
    public let adam: AdamW.Parameters
    /// Total loss of steps 1–3 (before each update).
    public let losses: [Double]
    /// (ce, z, lb) of steps 1–3.
    public let parts: [[Double]]
    let file: H5File

    public init(path: String) throws {
        let f = try H5File.open(path, checksums: .verifyIfPresent)
        file = f
        guard let cfgText = try f.attribute("cfg_json")?.stringValue,
              let json = try JSONSerialization.jsonObject(with: Data(cfgText.utf8)) as? [String: Any] else {
            throw PilotError.notFound(file: path, object: "attribute cfg_json (is this a jax_ref.py --dump-h5 file?)")
        }
        func int(_ k: String) throws -> Int {
            guard let v = json[k] as? NSNumber else { throw PilotError.notFound(file: path, object: "cfg_json key \(k)") }
            return v.intValue
        }
        func dbl(_ k: String) throws -> Double {
            guard let v = json[k] as? NSNumber else { throw PilotError.notFound(file: path, object: "cfg_json key \(k)") }
            return v.doubleValue
        }
        var c = ModelConfig()
        let nv = try int("NV")
        let side = Int(Double(nv).squareRoot().rounded())
        guard side * side == nv else { throw PilotError.invalidArgument("\(path): NV=\(nv) is not a square number of patches") }
        c.patchSize = 8; c.imageSize = 8 * side
        c.visionWidth = try int("DV"); c.width = try int("D"); c.vocabSize = try int("V")
        c.layers = try int("L"); c.heads = try int("H"); c.ffnHidden = try int("F")
        c.contextLength = try int("T"); c.loraRank = try int("R"); c.loraAlpha = Float(try dbl("ALPHA"))
        c.adapterHidden = try int("AH"); c.ropeTheta = try dbl("ROPE_THETA"); c.normEps = Float(try dbl("EPS"))
        guard try int("DH") == c.width / c.heads else { throw PilotError.invalidArgument("\(path): DH ≠ D/H") }
        var o = ConnectorOptions()
        o.numTasks = try int("NTASK"); o.localTask = 0
        o.lambdaZ = Float(try dbl("ZLOSS")); o.lambdaBalance = Float(try dbl("LBLOSS"))
        o.clientAdapterInStage2 = .trainable
        config = c; options = o
        learningRate = Float(try dbl("LR"))
        adam = AdamW.Parameters(beta1: Float(try dbl("B1")), beta2: Float(try dbl("B2")), eps: Float(try dbl("ADAM_EPS")),
                                weightDecay: Float(try dbl("WD")))
        let B = try int("B"), T = c.contextLength, nans = try int("NANS"), L = T - nv
        let hv = try f.read(Float.self, at: "batch/hv")
        let tokens: [Int32]
        switch try f.info(of: "batch/text").typeName {
        case "int64": tokens = try f.read(Int64.self, at: "batch/text").values.map { Int32($0) }
        default: tokens = try f.read(Int32.self, at: "batch/text").values
        }
        guard tokens.count == B * L, hv.values.count == B * nv * c.visionWidth else {
            throw PilotError.typeMismatch(file: path, object: "batch", expected: "text [\(B),\(L)], hv [\(B),\(nv),\(c.visionWidth)]",
                                          found: "text \(tokens.count) ids, hv \(hv.shape)")
        }
        // targets: the last NANS text tokens (positions T−NANS..T−1), predicted from the position before
        var targets = [Int32](repeating: -1, count: B * T)
        for b in 0..<B { for j in 0..<nans { targets[b * T + T - nans - 1 + j] = tokens[b * L + L - nans + j] } }
        batch = Batch(size: B, visual: .features(hv.values), tokens: tokens, targets: targets)
        losses = try f.read(Double.self, at: "first3_loss").values
        let p = try f.read(Double.self, at: "first3_ce_z_lb").values
        parts = stride(from: 0, to: p.count, by: 3).map { Array(p[$0..<$0 + 3]) }
    }

    /// A model in the reference's configuration (stage 2, every connector group and LoRA trainable)
    /// with the reference's weights.
    public func makeModel(maxBatch: Int? = nil) throws -> MLLM {
        let m = try MLLM(config: config, variant: .pilotStage2, options: options, trainable: .connectorAndLoRA,
                         maxBatch: maxBatch ?? batch.size, seed: 0, optimizer: adam)
        try load(into: m)
        return m
    }

    /// Copies the reference's weights into `model` by name.
    public func load(into model: MLLM) throws {
        func put(_ src: String, _ dst: String, index: Int? = nil) throws {
            let a = try file.read(Float.self, at: src)
            let t = try model.tensor(named: dst)
            let n = t.count
            let start = (index ?? 0) * n
            guard a.values.count >= start + n else {
                throw PilotError.typeMismatch(file: file.path, object: src, expected: "\(t.shape) for \(dst)", found: "\(a.shape)")
            }
            a.values.withUnsafeBufferPointer { t.pointer.update(from: $0.baseAddress! + start, count: n) }
        }
        let order = [Names.prefix(Names.clientAdapter)] + (0..<options.numTasks).map { Names.prefix(Names.taskAdapters($0)) }
            + (1..<options.numTasks).map { Names.prefix(Names.crossTaskAdapter($0)) }
        for (a, prefix) in order.enumerated() {
            try put("train/conn_W1", prefix + "fc1/weight", index: a); try put("train/conn_b1", prefix + "fc1/bias", index: a)
            try put("train/conn_W2", prefix + "fc2/weight", index: a); try put("train/conn_b2", prefix + "fc2/bias", index: a)
        }
        try put("train/router", Names.routerWeight)
        try put("frozen/embed", "lm/embed"); try put("frozen/lm_head", "lm/lm_head/weight")
        try put("frozen/final_norm", "lm/final_norm/weight")
        for l in 0..<config.layers {
            let p = "lm/layers/\(l)/"
            try put("frozen/layers/\(l)/attn_norm", p + "attn_norm/weight")
            try put("frozen/layers/\(l)/mlp_norm", p + "mlp_norm/weight")
            for (blk, n) in [("attn", "q"), ("attn", "k"), ("attn", "v"), ("attn", "o"), ("mlp", "gate"), ("mlp", "up"), ("mlp", "down")] {
                try put("frozen/layers/\(l)/W\(n)", p + "\(blk)/\(n)/weight")
                try put("train/lora/\(l)/\(n)/A", p + "\(blk)/\(n)/lora_a")
                try put("train/lora/\(l)/\(n)/B", p + "\(blk)/\(n)/lora_b")
            }
        }
        model.optimizer.reset()
    }
}
