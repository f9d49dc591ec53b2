import Foundation
import PilotCore

/// transformers' `CLIPVisionConfig`: the keys the vision tower reads, with transformers' defaults for keys a
/// config.json leaves out (older Hub configs store only what differs from the defaults).
public struct CLIPVisionConfig: Sendable, Equatable {
    public var hiddenSize = 768
    public var intermediateSize = 3072
    public var numHiddenLayers = 12
    public var numAttentionHeads = 12
    public var numChannels = 3
    public var imageSize = 224
    public var patchSize = 32
    /// `quick_gelu` (x·σ(1.702x), CLIP's own) or `gelu` (exact, erf).
    public var hiddenAct = "quick_gelu"
    public var layerNormEps: Float = 1e-5

    public static let supportedActivations = ["quick_gelu", "gelu"]

    public var headDim: Int { hiddenSize / numAttentionHeads }
    /// Patches per side and in all (P); the sequence is P + 1 with the CLS token first.
    public var gridSize: Int { imageSize / patchSize }
    public var numPatches: Int { gridSize * gridSize }

    public init() {}

    /// Every size with its cap, far above any CLIP tower (ViT-bigG: width 1664, FFN 8192, 48 layers, 16 heads),
    /// so no product of sizes overflows and no loop runs on a hostile count; the tensors are checked
    /// against them before the weights are allocated (`CLIPVisionWeights`).
    public var sizes: [(key: String, value: Int, cap: Int)] {
        [("hidden_size", hiddenSize, 1 << 16), ("intermediate_size", intermediateSize, 1 << 18),
         ("num_hidden_layers", numHiddenLayers, 1 << 10), ("num_attention_heads", numAttentionHeads, 1 << 10),
         ("num_channels", numChannels, 16), ("image_size", imageSize, 1 << 14), ("patch_size", patchSize, 1 << 14)]
    }

    /// The vision config in `file`'s JSON: the object itself when `model_type` is `clip_vision_model` (a
    /// saved CLIPVisionModel), else its `vision_config` (a CLIPModel, or a LLaVA config). Validated.
    public static func decode(json: Data, file: String) throws -> CLIPVisionConfig {
        guard let top = (try? JSONSerialization.jsonObject(with: json)) as? [String: Any] else {
            throw PilotError.invalidArgument("\(file) is not a JSON object; a CLIP vision tower directory needs transformers' config.json")
        }
        let type = top["model_type"] as? String
        let o: [String: Any]
        var key = ""
        if type == "clip_vision_model" {
            o = top
        } else if let v = top["vision_config"] as? [String: Any] {
            o = v; key = "vision_config."
            if let t = v["model_type"] as? String, t != "clip_vision_model" {
                throw PilotError.invalidArgument("\(file): vision_config.model_type is \"\(t)\"; pilot reads CLIP vision towers (clip_vision_model)")
            }
        } else {
            throw PilotError.invalidArgument("\(file): model_type is \(type.map { "\"\($0)\"" } ?? "missing") and there is no vision_config; pilot reads a CLIPVisionModel (model_type clip_vision_model) or a config with a CLIP vision_config")
        }
        var c = CLIPVisionConfig()
        func int(_ k: String, _ into: inout Int) throws {
            guard let v = o[k], !(v is NSNull) else { return }
            // Read through Double and capped first: a huge or fractional number never reaches an Int conversion.
            func size(_ n: NSNumber) -> Int? {
                let d = n.doubleValue
                return d == d.rounded() && d > 0 && d <= Double(1 << 24) ? Int(d) : nil
            }
            if let n = v as? NSNumber, let i = size(n) { into = i; return }
            // image_size / patch_size may be [h, w]; only square ones are supported
            if let a = v as? [NSNumber], a.count == 2, a[0] == a[1], let i = size(a[0]) { into = i; return }
            throw PilotError.invalidArgument("\(file): \(key)\(k) is \(v); expected a positive integer (square images and patches only)")
        }
        try int("hidden_size", &c.hiddenSize)
        try int("intermediate_size", &c.intermediateSize)
        try int("num_hidden_layers", &c.numHiddenLayers)
        try int("num_attention_heads", &c.numAttentionHeads)
        try int("num_channels", &c.numChannels)
        try int("image_size", &c.imageSize)
        try int("patch_size", &c.patchSize)
        if let a = o["hidden_act"] {
            guard let s = a as? String else { throw PilotError.invalidArgument("\(file): \(key)hidden_act is not a string") }
            c.hiddenAct = s
        }
        if let e = o["layer_norm_eps"] as? NSNumber { c.layerNormEps = e.floatValue }
        try c.validate(file: file, key: key)
        return c
    }

    /// Reads `<directory>/config.json`.
    public static func load(directory: String) throws -> CLIPVisionConfig {
        let file = directory + "/config.json"
        guard let data = try readSmallFile(file, limit: smallFileLimit, what: "a config.json") else {
            throw PilotError.invalidArgument("\(directory) has no config.json; a CLIP vision tower directory is what CLIPVisionModel.save_pretrained (or CLIPModel's) writes")
        }
        return try decode(json: data, file: file)
    }

    /// Throws, naming the key, for what this tower would not compute as transformers does.
    public func validate(file: String, key: String = "") throws {
        for (k, v, cap) in sizes where v <= 0 || v > cap {
            throw PilotError.invalidArgument("\(file): \(key)\(k) \(v) is out of range: pilot reads 1…\(cap) (docs/models.md); the config is corrupt or not a CLIP tower pilot runs")
        }
        guard CLIPVisionConfig.supportedActivations.contains(hiddenAct) else {
            throw PilotError.invalidArgument("\(file): \(key)hidden_act \"\(hiddenAct)\" is not supported (\(CLIPVisionConfig.supportedActivations.joined(separator: " or ")))")
        }
        guard hiddenSize % numAttentionHeads == 0 else {
            throw PilotError.invalidArgument("\(file): \(key)hidden_size \(hiddenSize) is not a multiple of num_attention_heads \(numAttentionHeads)")
        }
        guard imageSize % patchSize == 0 else {
            throw PilotError.invalidArgument("\(file): \(key)image_size \(imageSize) is not a multiple of patch_size \(patchSize)")
        }
        guard layerNormEps.isFinite, layerNormEps > 0 else {
            throw PilotError.invalidArgument("\(file): \(key)layer_norm_eps \(layerNormEps) must be a positive number")
        }
    }
}

/// Image normalisation of the CLIP processor (`CLIPImageProcessor`): pixel values in [0, 1] after resizing
/// to `image_size` (LLaVA-1.5 first pads the image to a square with the mean colour, then resizes with
/// bicubic filtering to 336 and centre-crops), then `(x − mean) / std` per channel, channels first.
/// The tower takes these normalised values.
public struct CLIPImageNormalization: Sendable, Equatable {
    /// OpenAI CLIP's `image_mean` / `image_std` (transformers' OPENAI_CLIP_MEAN / OPENAI_CLIP_STD), RGB.
    public static let openAIMean: [Float] = [0.48145466, 0.4578275, 0.40821073]
    public static let openAIStd: [Float] = [0.26862954, 0.26130258, 0.27577711]

    public var mean: [Float]
    public var std: [Float]

    public init(mean: [Float] = openAIMean, std: [Float] = openAIStd) { self.mean = mean; self.std = std }

    /// `image_mean` / `image_std` from `<directory>/preprocessor_config.json` when present, else OpenAI's.
    public init(directory: String) throws {
        self.init()
        let file = directory + "/preprocessor_config.json"
        guard let data = FileManager.default.contents(atPath: file) else { return }
        guard let o = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw PilotError.invalidArgument("\(file) is not a JSON object")
        }
        for (k, dst) in [("image_mean", \CLIPImageNormalization.mean), ("image_std", \CLIPImageNormalization.std)] {
            guard let v = o[k] else { continue }
            guard let a = (v as? [NSNumber])?.map(\.floatValue), a.count == 3, a.allSatisfy({ $0.isFinite }) else {
                throw PilotError.invalidArgument("\(file): \(k) must be a list of 3 numbers (RGB)")
            }
            self[keyPath: dst] = a
        }
        guard std.allSatisfy({ $0 > 0 }) else { throw PilotError.invalidArgument("\(file): image_std must be positive") }
    }

    /// RGB pixels [H, W, 3] in [0, 1] (channels last, as decoded images are) → normalised [3, H, W].
    public func normalize(hwc: [Float], height: Int, width: Int) throws -> [Float] {
        guard hwc.count == height * width * 3 else {
            throw PilotError.invalidArgument("CLIP normalisation: \(hwc.count) values are not \(height)×\(width)×3 RGB pixels")
        }
        var out = [Float](repeating: 0, count: hwc.count)
        let plane = height * width
        for i in 0..<plane { for c in 0..<3 { out[c * plane + i] = (hwc[i * 3 + c] - mean[c]) / std[c] } }
        return out
    }
}
