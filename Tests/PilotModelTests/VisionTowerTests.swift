import Foundation
import PilotLM
@testable import PilotModel
import PilotTensor
import PilotTestSupport
import Testing

/// A CLIP vision tower (transformers' CLIPVisionModel, Tests/Fixtures/clip) as the frozen vision encoder
/// of the multimodal model over the tiny imported LM: the features the connector sees equal transformers'
/// hidden_states[-2][:, 1:], pretraining trains the connector only, and a changed tower is refused.
@Suite("CLIP tower as the vision encoder", .serialized)
struct VisionTowerTests {
    static let towerName = "vit-quickgelu"   // 32×32 images, 8×8 patches: 16 tokens of width 64

    /// The tiny LM with the fixture tower; 16 visual + 8 text tokens.
    static func model(_ base: PretrainedBase, variant: ConnectorVariant = .mlp, trainable: TrainableSelection = .variantDefault) throws -> MLLM {
        var c = tinyBaseConfig(base)
        c.contextLength = c.visualTokens + 8
        return try MLLM(config: c, variant: variant, trainable: trainable, maxBatch: 2, seed: 3, base: base)
    }

    /// The model's pixel input (v/127.5 − 1) whose CLIP normalisation is exactly the fixture's pixels.
    static func modelPixels(_ f: CLIPFixture, _ tower: FrozenVisionTower) -> [Float] {
        let affine = tower.pixelAffine, plane = tower.config.imageSize * tower.config.imageSize
        return f.pixels.enumerated().map { i, p in
            let (s, t) = affine[(i / plane) % 3]
            return (p - t) / s
        }
    }

    @Test("the connector's input is transformers' penultimate-layer patch features (≤ 1e-4)")
    func featuresMatchTransformers() throws {
        let d = tinyBaseDirectory(); defer { d.cleanup() }
        let base = try PretrainedBase(directory: d.path, visionTower: CLIPFixture.path(Self.towerName))
        let tower = try #require(base.visionTower)
        let f = try CLIPFixture(Self.towerName)
        let m = try Self.model(base)
        #expect(m.config.imageSize == 32 && m.config.visualTokens == f.patches && m.config.visionWidth == f.hidden)
        #expect(m.config.visionTower?.sha256 == tower.sha256 && m.config.visionTower?.featureLayer == -2)
        #expect(!m.parameters.names.contains { $0.hasPrefix("vision/") }, "the tower's weights are not parameters of the model")
        var batch = tinyBatch(m.config, pixels: true)
        batch.visual = .pixels(Self.modelPixels(f, tower))
        let hv = try m.visualFeatures(batch)
        let ours = Array(UnsafeBufferPointer(start: hv, count: f.batch * f.patches * f.hidden))
        let diff = maxAbsDiff(ours, f.penultimatePatch)
        print("vision tower in the model: max |ours − transformers| = \(diff) over [\(f.batch), \(f.patches), \(f.hidden)]")
        #expect(diff <= 1e-4)
        #expect(f.penultimatePatch.map(abs).max()! > 1e-2, "the reference features are not trivially zero")

        // the last layer (feature layer −1): hidden_states[-1] without its CLS rows
        let last = try PretrainedBase(directory: d.path, visionTower: CLIPFixture.path(Self.towerName), featureLayer: -1)
        let m1 = try Self.model(last)
        let hv1 = try m1.visualFeatures(batch)
        let ours1 = Array(UnsafeBufferPointer(start: hv1, count: f.batch * f.patches * f.hidden))
        let S = f.patches + 1
        var want: [Float] = []
        for b in 0..<f.batch {
            let lo = (b * S + 1) * f.hidden, hi = (b + 1) * S * f.hidden
            want += f.lastClsPatch[lo..<hi]
        }
        #expect(maxAbsDiff(ours1, want) <= 1e-4)
    }

    @Test("pretraining with the tower trains the connector only: gradients, loss falls, tower and LM unchanged")
    func pretrainingTrainsTheConnectorOnly() throws {
        let d = tinyBaseDirectory(); defer { d.cleanup() }
        let base = try PretrainedBase(directory: d.path, visionTower: CLIPFixture.path(Self.towerName))
        let m = try Self.model(base, trainable: .pretrain)
        #expect(Set(m.parameters.trainableGroups.map(\.name)) == ["connector/mlp"])
        var batch = tinyBatch(m.config, pixels: true)
        let P = m.config.visualTokens
        batch.lengths = [Int32(P + 8), Int32(P + 6)]
        _ = try m.forwardBackward(batch)
        let items = try m.parameters.trainableGroups.map { g in
            (g.name, try m.parameters.view(group: g.name), try m.parameters.gradientView(group: g.name))
        }
        gradCheck(items, h: 2e-3, tol: 2e-2) { (try? m.loss(batch).total) ?? .nan }
        let towerBefore = Array(try base.visionTower!.tower.weights.storage), lmBefore = Array(base.weights.bytes)
        let first = try m.loss(batch).total
        for _ in 0..<20 { try m.trainStep(batch, learningRate: 3e-3) }
        let after = try m.loss(batch).total
        print("pretraining over the CLIP tower: loss \(first) → \(after) in 20 steps")
        #expect(after < 0.8 * first)
        #expect(Array(try base.visionTower!.tower.weights.storage) == towerBefore && Array(base.weights.bytes) == lmBefore)
    }

    @Test("the weights are read on first use and again after a release: the same features bit for bit; a tower changed meanwhile is refused")
    func releaseAndReload() throws {
        let tmp = TemporaryDirectory("tower-release"); defer { tmp.cleanup() }
        let copy = tmp.file("tower")
        try FileManager.default.copyItem(atPath: CLIPFixture.path(Self.towerName), toPath: copy)
        let f = try CLIPFixture(Self.towerName)
        let tower = try FrozenVisionTower(directory: copy)
        #expect(!tower.holdsWeights)
        let px = Self.modelPixels(f, tower)
        let before = try tower.features(modelPixels: px, batch: f.batch)
        #expect(tower.holdsWeights)
        tower.releaseWeights()
        #expect(!tower.holdsWeights)
        #expect(try tower.features(modelPixels: px, batch: f.batch) == before)
        #expect(tower.holdsWeights)
        tower.releaseWeights()
        let h = FileHandle(forWritingAtPath: copy + "/config.json")!
        h.seekToEndOfFile(); h.write(Data(" ".utf8)); try h.close()
        let e = errorText { _ = try tower.features(modelPixels: px, batch: f.batch) }
        #expect(e?.contains("changed while the run used it") == true && e?.contains(copy) == true, "\(e ?? "no error")")
    }

    @Test("a changed, missing or mismatched tower is refused with the path and what to do")
    func refusals() throws {
        let d = tinyBaseDirectory(); defer { d.cleanup() }
        let tmp = TemporaryDirectory("tower-copy"); defer { tmp.cleanup() }
        let copy = tmp.file("tower")
        try FileManager.default.copyItem(atPath: CLIPFixture.path(Self.towerName), toPath: copy)
        let base = try PretrainedBase(directory: d.path, visionTower: copy)
        let config = try Self.model(base).config

        // reloading from the config works; a changed file is refused by hash, a moved one by path
        #expect(try PretrainedBase.load(for: config, context: "base.h5")?.visionTower?.sha256 == base.visionTower?.sha256)
        let h = FileHandle(forWritingAtPath: copy + "/config.json")!
        h.seekToEndOfFile(); h.write(Data(" ".utf8)); try h.close()
        let changed = errorText { _ = try PretrainedBase.load(for: config, context: "base.h5") }
        #expect(changed?.contains("base.h5") == true && changed?.contains("changed") == true && changed?.contains("--vision-tower") == true, "\(changed ?? "no error")")
        let moved = errorText { _ = try PretrainedBase.load(for: config, context: "base.h5", towerPath: tmp.file("elsewhere")) }
        #expect(moved?.contains("does not exist on this machine") == true, "\(moved ?? "no error")")

        // a model config with a tower, on a base loaded without one, and the reverse
        let plain = try PretrainedBase(directory: d.path)
        let e1 = errorText { _ = try MLLM(config: config, variant: .mlp, maxBatch: 1, base: plain) }
        #expect(e1?.contains("vision tower") == true, "\(e1 ?? "no error")")
        var noTower = config; noTower.visionTower = nil
        let e2 = errorText { _ = try MLLM(config: noTower, variant: .mlp, maxBatch: 1, base: base) }
        #expect(e2?.contains("built-in ViT") == true, "\(e2 ?? "no error")")
        // a tower needs an imported LM; a feature layer outside the hidden states is refused
        var builtIn = ModelConfig.tiny; builtIn.visionTower = config.visionTower
        #expect(errorText { try builtIn.validate() }?.contains("vision_tower needs an imported LM") == true)
        let e3 = errorText { _ = try PretrainedBase(directory: d.path, visionTower: CLIPFixture.path(Self.towerName), featureLayer: -5) }
        #expect(e3?.contains("-4...3") == true, "\(e3 ?? "no error")")
    }
}

private func errorText(_ body: () throws -> Void) -> String? {
    do { try body(); return nil } catch { return "\(error)" }
}
