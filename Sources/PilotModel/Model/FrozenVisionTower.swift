import Foundation
import PilotCore
import PilotLM

/// A Hugging Face CLIP vision tower that a model uses as its vision encoder: where it is, what its files
/// hash to, and which hidden state feeds the connector. The base checkpoint stores this instead of the
/// tower's weights (as it does for the LM); every rank checks the hash before it trains.
public struct VisionTowerReference: Codable, Sendable, Equatable {
    /// The directory `CLIPVisionModel.save_pretrained` (or `CLIPModel`'s) wrote, as given.
    public var path: String
    /// `PretrainedBase.contentHash` of the directory.
    public var sha256: String
    /// LLaVA's `vision_feature_layer`: the index into the tower's L + 1 hidden states, Python-style
    /// (−2, the penultimate layer's output, is LLaVA's default).
    public var featureLayer: Int

    public init(path: String, sha256: String, featureLayer: Int = -2) {
        self.path = path; self.sha256 = sha256; self.featureLayer = featureLayer
    }

    enum CodingKeys: String, CodingKey { case path, sha256, featureLayer = "feature_layer" }
}

/// A CLIP vision tower, frozen, as the multimodal model's vision encoder (LLaVA's `CLIPVisionTower` with
/// the "patch" select strategy): the patch tokens of hidden_states[`featureLayer`] go to the connector.
/// It has no trainable parameters and no backward pass; pretraining with it trains the connector only,
/// as LLaVA's stage 1 does. Loaded once per rank with the LM (`PretrainedBase`) and shared.
///
/// Its weights (Float32, 1.2 GB at CLIP-L/14-336) are a private copy per rank, read on the tower's first
/// use (`init` checks every tensor's shape, not the values), with the directory's hash checked again
/// then. A run whose features are cached (`model.cache_vision_features`) needs them only to build missing
/// caches, and drops them afterwards (`releaseWeights`); when every cache is valid they are never read.
public final class FrozenVisionTower: @unchecked Sendable {
    public let directory: String
    public let sha256: String
    public let featureLayer: Int
    public let normalization: CLIPImageNormalization
    public let config: CLIPVisionConfig
    private let lock = NSLock()
    private var loaded: CLIPVisionTower?

    public var reference: VisionTowerReference { VisionTowerReference(path: directory, sha256: sha256, featureLayer: featureLayer) }

    /// The tower with its weights, read from the directory on first use (and again after `releaseWeights`);
    /// a directory whose files no longer hash to `sha256` is refused.
    public var tower: CLIPVisionTower {
        get throws {
            lock.lock(); defer { lock.unlock() }
            if let loaded { return loaded }
            let now = try PretrainedBase.contentHash(directory: directory)
            let t = try CLIPVisionTower.load(directory: directory)
            guard now == sha256, t.config == config else {
                throw PilotError.invalidArgument("the vision tower at '\(directory)' changed while the run used it (its files hashed to \(sha256.prefix(12))…, now to \(now.prefix(12))…); restore the original files, or pretrain a new base on this tower")
            }
            loaded = t
            return t
        }
    }

    /// Whether the weights are in memory now.
    public var holdsWeights: Bool { lock.lock(); defer { lock.unlock() }; return loaded != nil }

    /// Frees the weights (a run whose features are cached no longer runs the tower).
    public func releaseWeights() { lock.lock(); loaded = nil; lock.unlock() }

    /// Hashes `directory` and checks its config and tensors (the values are read on first use); with
    /// `expected` a changed directory is refused.
    /// - Parameter context: what refers to it (e.g. the base checkpoint), for the errors.
    public init(directory: String, featureLayer: Int = -2, expected: (sha256: String, context: String)? = nil) throws {
        let hash = try PretrainedBase.referencedHash(
            directory: directory, what: "the vision tower", expected: expected,
            missing: "copy the same directory there, or give its path with model.vision_tower",
            absent: "vision tower directory '\(directory)' does not exist; give a directory that CLIPVisionModel.save_pretrained wrote (config.json and model.safetensors)",
            changed: "the tower's directory changed. Restore the original files, or pretrain a new base on this tower (`pilot pretrain --vision-tower \(directory)`)")
        // every tensor and shape checked against config.json now; the values are read on first use
        let config = try CLIPVisionConfig.load(directory: directory)
        try CLIPVisionWeights.check(config: config, source: try SafetensorsCheckpoint(directory: directory))
        guard config.numChannels == 3 else {
            throw PilotError.invalidArgument("\(directory)/config.json: num_channels \(config.numChannels); the data is RGB, so the vision tower must take 3 channels")
        }
        let L = config.numHiddenLayers
        guard featureLayer >= -(L + 1), featureLayer <= L else {
            throw PilotError.invalidArgument("vision feature layer \(featureLayer) is outside the \(L + 1) hidden states of the tower at '\(directory)' (-\(L + 1)...\(L); LLaVA uses -2)")
        }
        self.directory = directory
        self.sha256 = hash
        self.featureLayer = featureLayer
        self.config = config
        normalization = try CLIPImageNormalization(directory: directory)
    }

    /// The vision part of `template` for this tower: image and patch size, channels and width from its
    /// config.json (the ViT layer, head and MLP sizes of the template are unused), and the reference.
    public func apply(to template: ModelConfig) -> ModelConfig {
        var c = template
        c.imageSize = config.imageSize; c.patchSize = config.patchSize; c.channels = config.numChannels
        c.visionWidth = config.hiddenSize
        c.visionTower = reference
        return c
    }

    /// Per-channel (scale, shift) that turns the model's pixel input x = v/127.5 − 1 (v ∈ [0, 255], see
    /// `Batcher.pixels`) into the CLIP processor's (v/255 − mean)/std: x·scale + shift.
    public var pixelAffine: [(scale: Float, shift: Float)] {
        (0..<3).map { c in
            let m = normalization.mean[c], s = normalization.std[c]
            return (1 / (2 * s), (0.5 - m) / s)
        }
    }

    /// Features [B·P, hidden] of `B` images given as the model's pixels [B, 3, I, I] in [−1, 1]: the
    /// connector's input, exactly what the model computes in-line. Each image's rows are the same bits in
    /// any batch (`CLIPVisionTower` runs images one at a time), so they can be computed once and cached.
    public func features(modelPixels: [Float], batch B: Int) throws -> [Float] {
        let affine = pixelAffine, plane = config.imageSize * config.imageSize
        var px = modelPixels
        px.withUnsafeMutableBufferPointer { p in
            for b in 0..<B {
                for c in 0..<3 {
                    let (s, t) = affine[c], o = (b * 3 + c) * plane
                    for i in o..<(o + plane) { p[i] = p[i] * s + t }
                }
            }
        }
        return try tower.features(pixels: px, batch: B, layer: featureLayer)  // `tower` reads the weights again if they were released
    }
}
