import Foundation
import PilotCore
import PilotLM
import PilotModel

/// A client's personalised model from a federated run on an imported LM, written for the Hugging Face
/// ecosystem (`pilot export peft`):
///
///   adapter_config.json, adapter_model.safetensors   the LoRA on the LM, in peft's format
///   connector.safetensors                            the connector (every tensor of connector/…)
///   vision.safetensors                               the vision encoder (vision/…); absent with a CLIP tower,
///                                                    which the README and multimodal_config.json name instead
///   multimodal_config.json                           model config, connector variant and options, layout
///   README.md                                        what each file is and how to load it
///
/// Names in the two extra files are pilot's with '/' → '.', e.g. `connector.task_adapters.0.fc1.weight`;
/// every 2-D `….weight` of a linear layer is stored as torch.nn.Linear holds it, [out, in]
/// (pilot computes y = x·W + b with W [in, out]); other tensors (biases, norms, `vision.pos_embed`) as they are.
///
/// FedDPA's personal model has two LoRAs, a global and a local one, summed with the same scale; they are
/// exported as one adapter of rank 2r (A = [A_g | A_l], B = [B_g ; B_l]), which computes exactly their
/// sum, the model that FedDPA trains (its instance-wise weighting at inference has no peft counterpart).
public enum ClientExport {
    public struct Summary: Sendable {
        public var round: Int
        public var variant: ConnectorVariant
        public var rank: Int
        public var targets: [String]
        public var loraTensors: Int
        public var connectorTensors: Int
        public var visionTensors: Int
        public var baseModel: String
    }

    /// Exports client `client`'s model of `round` (the newest complete round when nil) of `run` into `out`.
    public static func peft(run: String, round: Int? = nil, client: Int, out: String, force: Bool = false) throws -> Summary {
        let (model, _, task, r) = try PersonalisedModel.load(run: run, round: round, client: client, maxBatch: 1)
        guard let base = model.base else {
            throw PilotError.invalidArgument("'\(run)' trained the built-in LM, which has no Hugging Face counterpart to put a PEFT adapter on; export needs a run on an imported LM (`model.lm`, a base from `pilot pretrain --lm`)")
        }
        let c = model.config
        let targets = c.loraTargetNames.compactMap(LoRAAdapter.Target.init(rawValue:))
        let dpa = model.variant == .dualLoRA
        let rank = dpa ? 2 * c.loraRank : c.loraRank
        let adapter = try LoRAAdapter(config: base.llama, rank: rank, alpha: c.loraAlpha * Float(rank) / Float(c.loraRank), targets: targets) { name, shape in
            let global = try model.tensor(named: name).values
            guard dpa else { return global }
            let leaf = name.hasSuffix("lora_a") ? "lora_a" : "lora_b"
            let local = try model.tensor(named: String(name.dropLast(leaf.count)) + "local_" + leaf).values
            if leaf == "lora_b" { return global + local }  // [r, out] stacked: rows of B_g, then of B_l
            // [in, r] side by side: row i is A_g[i, :] then A_l[i, :]
            let rows = shape[0], r = c.loraRank
            var out = [Float](); out.reserveCapacity(rows * 2 * r)
            for i in 0..<rows { out += global[(i * r)..<((i + 1) * r)]; out += local[(i * r)..<((i + 1) * r)] }
            return out
        }
        let names = model.parameters.names
        let connector = names.filter { $0.hasPrefix("connector/") }, vision = names.filter { $0.hasPrefix("vision/") }
        let meta = ["format": "pt", "producer": "pilot export peft", "run": run, "client": "\(client)", "round": "\(r)",
                    "layout": "linear weights [out, in] as torch.nn.Linear; names are pilot's with '/' replaced by '.'"]
        func tensors(_ list: [String]) -> (String) throws -> Void {
            { path in try writeTensors(model, names: list, path: path, metadata: meta) }
        }
        let enc = JSONEncoder(); enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let scaling = base.visionTower.map { t in
            "RGB in [0, 255] → (x/255 − image_mean)/image_std per channel (image_mean \(t.normalization.mean), image_std \(t.normalization.std)), image_size × image_size, channels first: the CLIP processor's normalisation"
        } ?? "RGB in [0, 255] → x/127.5 − 1, image_size × image_size"
        let multimodal = MultimodalConfig(modelConfig: c, connectorVariant: model.variant.rawValue, connectorOptions: model.options,
                                          task: task.rawValue, client: client, round: r, run: run,
                                          visualTokens: c.visualTokens, visualPosition: c.visualOffset,
                                          pixelScaling: scaling)
        let readme = PEFTExport.readme(adapter: adapter, baseModel: base.directory,
                                       title: "Client \(client) (\(task.rawValue)) of \(run), round \(r)", extra: readmeExtra(model, dpa: dpa))
        try PEFTExport.write(adapter: adapter, baseModel: base.directory, out: out, force: force, extraFiles: [
            .init(name: "connector.safetensors", write: tensors(connector)),
        ] + (vision.isEmpty ? [] : [.init(name: "vision.safetensors", write: tensors(vision))]) + [
            .data("multimodal_config.json", try enc.encode(multimodal) + Data([0x0a])),
            .data("README.md", Data(readme.utf8)),
        ])
        return Summary(round: r, variant: model.variant, rank: rank, targets: targets.map(\.rawValue), loraTensors: adapter.tensors.count,
                       connectorTensors: connector.count, visionTensors: vision.count, baseModel: base.directory)
    }

    struct MultimodalConfig: Encodable {
        var modelConfig: ModelConfig
        var connectorVariant: String
        var connectorOptions: ConnectorOptions
        var task: String
        var client: Int
        var round: Int
        var run: String
        var visualTokens: Int
        var visualPosition: Int
        var pixelScaling: String
        enum CodingKeys: String, CodingKey {
            case modelConfig = "model_config", connectorVariant = "connector_variant", connectorOptions = "connector_options"
            case task, client, round, run, visualTokens = "visual_tokens", visualPosition = "visual_position", pixelScaling = "pixel_scaling"
        }
    }

    /// The exported name of a parameter and whether it is stored transposed.
    public static func exportedName(_ name: String, shape: [Int]) -> (name: String, transposed: Bool) {
        (name.replacingOccurrences(of: "/", with: "."), shape.count == 2 && name.hasSuffix("/weight"))
    }

    static func writeTensors(_ model: MLLM, names: [String], path: String, metadata: [String: String]) throws {
        var infos: [TensorInfo] = [], source: [String: (String, Bool)] = [:]
        for n in names {
            let t = try model.tensor(named: n)
            let (name, transposed) = exportedName(n, shape: t.shape)
            infos.append(TensorInfo(name: name, shape: transposed ? [t.shape[1], t.shape[0]] : t.shape, dtype: .f32))
            source[name] = (n, transposed)
        }
        try SafetensorsWriter.write(path: path, tensors: infos, metadata: metadata) { info, out in
            let (n, transposed) = source[info.name]!
            let t = try model.tensor(named: n)
            if transposed {
                let rows = t.shape[0], cols = t.shape[1], p = t.pointer
                for i in 0..<rows { for j in 0..<cols { out[j * rows + i] = p[i * cols + j] } }
            } else {
                out.baseAddress!.update(from: t.pointer, count: t.count)
            }
        }
    }

    static func visionLine(_ model: MLLM) -> String {
        let c = model.config
        if let t = model.base?.visionTower {
            return "- The vision encoder is the CLIP vision tower at `\(t.directory)` (transformers' `CLIPVisionModel`, sha256 \(t.sha256.prefix(12))…), frozen and not copied here: LLaVA's `vision_feature_layer` = \(t.featureLayer), the patch tokens without CLS (\(c.visualTokens) of them, width \(c.visionWidth)), \(c.imageSize)×\(c.imageSize) images."
        }
        return "- `vision.safetensors`: pilot's ViT (\(c.visionLayers) layers, width \(c.visionWidth), \(c.imageSize)×\(c.imageSize) images in \(c.patchSize)×\(c.patchSize) patches, \(c.visualTokens) visual tokens)."
    }

    static func readmeExtra(_ model: MLLM, dpa: Bool) -> String {
        let c = model.config
        return """
        ## The rest of the multimodal model

        - `connector.safetensors`: the \(model.variant.rawValue) connector (vision width \(c.visionWidth) → LM width \(c.width)).
        \(visionLine(model))
        - `multimodal_config.json`: the model config, connector variant and options, and the sequence layout.

        Tensor names are pilot's with `/` replaced by `.`; every linear weight is `[out, in]` as in `torch.nn.Linear`.
        The \(c.visualTokens) connector outputs replace no token: they are inserted into the LM's input embeddings
        after the first \(c.visualOffset) tokens of the chat prompt (the system turn and the opening of the user turn),
        followed by a newline and the instruction. pilot's docs/design.md §2–3 and docs/models.md describe the architecture.
        \(dpa ? "\nFedDPA: the adapter is the sum of the global and the local LoRA (rank \(c.loraRank) each, stacked to rank \(2 * c.loraRank)).\n" : "")
        """
    }
}
