import Foundation
import PilotCore

/// Every parameter of a CLIP vision tower in ONE Float32 allocation, with named views. `table` is the only
/// place that maps transformers' names (modeling_clip.py; `pre_layrnorm` is its spelling) to these fields.
/// Shape letters: see CLIPVisionTower.swift. Linear weights are [out, in] as in PyTorch.
public final class CLIPVisionWeights: @unchecked Sendable {
    public struct Linear { public let weight: UnsafeMutablePointer<Float>; public let bias: UnsafeMutablePointer<Float> }
    public struct Norm { public let weight: UnsafeMutablePointer<Float>; public let bias: UnsafeMutablePointer<Float> }
    public struct Layer {
        public let layerNorm1: Norm        // [C], [C]
        public let qProj: Linear           // [C, C], [C]
        public let kProj: Linear           // [C, C], [C]
        public let vProj: Linear           // [C, C], [C]
        public let outProj: Linear         // [C, C], [C]
        public let layerNorm2: Norm        // [C], [C]
        public let fc1: Linear             // [F, C], [F]
        public let fc2: Linear             // [C, F], [C]
    }

    /// One row of the mapping table: a name relative to the tower (`embeddings.class_embedding`, …).
    public struct Entry: Sendable {
        public let name: String
        public let shape: [Int]
        public var count: Int { shape.reduce(1, *) }
    }

    public let config: CLIPVisionConfig
    public let storage: UnsafeMutableBufferPointer<Float>
    public let entries: [Entry]
    /// The prefix the tensors had in the file: "" (a CLIPVisionModel saved by transformers 5),
    /// "vision_model." (a CLIPModel, or a CLIPVisionModel saved by transformers 4), …
    public let prefix: String
    public let patchEmbedding: UnsafeMutablePointer<Float>     // [C, Ch, p, p], read as [C, Ch·p·p]
    public let classEmbedding: UnsafeMutablePointer<Float>     // [C]
    public let positionEmbedding: UnsafeMutablePointer<Float>  // [S, C]
    public let preLayerNorm: Norm                              // [C], [C]
    public let layers: [Layer]
    public let postLayerNorm: Norm                             // [C], [C] (for the pooled CLS output only)

    /// transformers' names (without prefix) and shapes of every tensor, in storage order.
    public static func table(_ c: CLIPVisionConfig) -> [Entry] {
        let C = c.hiddenSize, F = c.intermediateSize, p = c.patchSize
        var t = [Entry(name: "embeddings.patch_embedding.weight", shape: [C, c.numChannels, p, p]),
                 Entry(name: "embeddings.class_embedding", shape: [C]),
                 Entry(name: "embeddings.position_embedding.weight", shape: [c.numPatches + 1, C]),
                 Entry(name: "pre_layrnorm.weight", shape: [C]), Entry(name: "pre_layrnorm.bias", shape: [C])]
        for l in 0..<c.numHiddenLayers {
            let e = "encoder.layers.\(l)."
            func linear(_ n: String, _ o: Int, _ i: Int) -> [Entry] { [Entry(name: e + n + ".weight", shape: [o, i]), Entry(name: e + n + ".bias", shape: [o])] }
            t += [Entry(name: e + "layer_norm1.weight", shape: [C]), Entry(name: e + "layer_norm1.bias", shape: [C])]
            t += linear("self_attn.q_proj", C, C) + linear("self_attn.k_proj", C, C) + linear("self_attn.v_proj", C, C)
            t += linear("self_attn.out_proj", C, C)
            t += [Entry(name: e + "layer_norm2.weight", shape: [C]), Entry(name: e + "layer_norm2.bias", shape: [C])]
            t += linear("mlp.fc1", F, C) + linear("mlp.fc2", C, F)
        }
        t += [Entry(name: "post_layernorm.weight", shape: [C]), Entry(name: "post_layernorm.bias", shape: [C])]
        return t
    }

    /// The tower's prefix in `source`: the part before `embeddings.patch_embedding.weight`, which must
    /// occur exactly once (a CLIPModel's text tower has no patch embedding).
    public static func prefix(in source: TensorSource) throws -> String {
        let key = "embeddings.patch_embedding.weight"
        let found = source.tensorInfos.map(\.name).filter { $0 == key || $0.hasSuffix("." + key) }
        guard found.count == 1 else {
            if found.isEmpty {
                throw PilotError.invalidArgument("\(source.path): no tensor '\(key)' (or 'vision_model.\(key)'); this is not a CLIP vision tower checkpoint")
            }
            throw PilotError.invalidArgument("\(source.path): several vision towers (\(found.sorted().joined(separator: ", "))); pilot reads a checkpoint with one")
        }
        return String(found[0].dropLast(key.count))
    }

    /// Checks that `source` holds every tensor of `table(config)` with its shape, under one prefix, without
    /// reading any value; returns the prefix. The weights' size is then bounded by the file's.
    @discardableResult
    public static func check(config: CLIPVisionConfig, source: TensorSource) throws -> String {
        try config.validate(file: "the config of \(source.path)")  // done at decode already; the caps bound `table`
        let prefix = try CLIPVisionWeights.prefix(in: source)
        for e in table(config) {
            let name = prefix + e.name
            guard let info = source.info(name) else {
                throw PilotError.invalidArgument("\(source.location(of: name)): tensor '\(name)' is missing; expected shape \(e.shape) from config.json")
            }
            guard info.shape == e.shape else {
                throw PilotError.invalidArgument("\(source.location(of: name)): tensor '\(name)' has shape \(info.shape); expected \(e.shape) from config.json (hidden_size \(config.hiddenSize), intermediate_size \(config.intermediateSize), image_size \(config.imageSize), patch_size \(config.patchSize), num_channels \(config.numChannels))")
            }
        }
        return prefix
    }

    /// Fills every tensor of `table(config)` from `source` (F16/BF16 converted to Float32), found under the
    /// tower's prefix. A missing tensor or a shape other than config.json's is refused by name, before the
    /// weights are allocated (so their size is bounded by the file's).
    public init(config: CLIPVisionConfig, source: TensorSource) throws {
        self.config = config
        prefix = try CLIPVisionWeights.check(config: config, source: source)
        entries = CLIPVisionWeights.table(config)
        let total = entries.reduce(0) { $0 + $1.count }
        storage = .allocate(capacity: total)
        storage.initialize(repeating: 0)
        var at: [String: UnsafeMutablePointer<Float>] = [:], offset = 0
        do {
            for e in entries {
                let name = prefix + e.name
                let view = UnsafeMutableBufferPointer(rebasing: storage[offset..<(offset + e.count)])
                try source.readFloat32(name, into: view)
                at[e.name] = view.baseAddress!
                offset += e.count
            }
        } catch {
            storage.deallocate()
            throw error
        }
        func norm(_ n: String) -> Norm { Norm(weight: at[n + ".weight"]!, bias: at[n + ".bias"]!) }
        func linear(_ n: String) -> Linear { Linear(weight: at[n + ".weight"]!, bias: at[n + ".bias"]!) }
        patchEmbedding = at["embeddings.patch_embedding.weight"]!
        classEmbedding = at["embeddings.class_embedding"]!
        positionEmbedding = at["embeddings.position_embedding.weight"]!
        preLayerNorm = norm("pre_layrnorm")
        postLayerNorm = norm("post_layernorm")
        layers = (0..<config.numHiddenLayers).map { l in
            let e = "encoder.layers.\(l)."
            return Layer(layerNorm1: norm(e + "layer_norm1"), qProj: linear(e + "self_attn.q_proj"),
                         kProj: linear(e + "self_attn.k_proj"), vProj: linear(e + "self_attn.v_proj"),
                         outProj: linear(e + "self_attn.out_proj"), layerNorm2: norm(e + "layer_norm2"),
                         fc1: linear(e + "mlp.fc1"), fc2: linear(e + "mlp.fc2"))
        }
    }

    deinit { storage.deallocate() }

    public var parameterCount: Int { storage.count }
}
