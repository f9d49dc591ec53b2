import Foundation
import PilotCore

/// The one mapping between pilot's LoRA names (LoRAAdapter) and Hugging Face PEFT's, for a
/// `LlamaForCausalLM` wrapped by `PeftModelForCausalLM` (peft's `save_pretrained` strips the adapter name):
///
///   lm/layers/{l}/attn/q/lora_a  [in, r]   ↔  base_model.model.model.layers.{l}.self_attn.q_proj.lora_A.weight  [r, in]   (transposed)
///   lm/layers/{l}/attn/q/lora_b  [r, out]  ↔  base_model.model.model.layers.{l}.self_attn.q_proj.lora_B.weight  [out, r]  (transposed)
///   … k, v, o under self_attn; gate, up, down under mlp.
public enum PEFTNames {
    public static let prefix = "base_model.model.model.layers."

    /// PEFT's names of the lora_A and lora_B weights of `target` in layer `l`.
    public static func names(layer l: Int, target t: LoRAAdapter.Target) -> (a: String, b: String) {
        let p = prefix + "\(l).\(t.huggingFaceBlock).\(t.huggingFaceName)."
        return (p + "lora_A.weight", p + "lora_B.weight")
    }

    /// (layer, target, isB) of a PEFT tensor name, or nil when it is not a LoRA weight of a decoder projection.
    public static func parse(_ name: String) -> (layer: Int, target: LoRAAdapter.Target, isB: Bool)? {
        guard name.hasPrefix(prefix) else { return nil }
        let parts = name.dropFirst(prefix.count).split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 5, let l = Int(parts[0]), l >= 0, String(l) == parts[0], parts[4] == "weight",
              let t = LoRAAdapter.Target(huggingFaceName: String(parts[2])), parts[1] == t.huggingFaceBlock,
              parts[3] == "lora_A" || parts[3] == "lora_B" else { return nil }
        return (l, t, parts[3] == "lora_B")
    }
}

/// The keys of `adapter_config.json` that pilot writes and reads (peft's `LoraConfig`).
public struct PEFTAdapterConfig: Sendable, Equatable {
    public var rank: Int
    public var alpha: Float
    public var targets: [LoRAAdapter.Target]
    /// The base model as the adapter records it (a directory or a Hub id); peft's AutoPeftModel loads it.
    public var baseModelNameOrPath: String?
    public var taskType: String?

    public init(rank: Int, alpha: Float, targets: [LoRAAdapter.Target], baseModelNameOrPath: String?, taskType: String? = "CAUSAL_LM") {
        self.rank = rank; self.alpha = alpha; self.targets = targets
        self.baseModelNameOrPath = baseModelNameOrPath; self.taskType = taskType
    }

    /// The JSON object pilot writes: LoRA as peft 0.21 saves it, with the keys that peft versions since 0.9
    /// all know (a newer peft fills its newer keys with their defaults; an older one would refuse keys it
    /// does not know), and the values that mean plain LoRA: no dropout, no bias, no DoRA / rsLoRA, every layer.
    public func jsonObject() -> [String: Any] {
        let alphaJSON: Any = alpha == alpha.rounded() && abs(alpha) < 1e9 ? Int(alpha) as Any : Double("\(alpha)")! as Any
        return [
            "peft_type": "LORA",
            "task_type": taskType.map { $0 as Any } ?? NSNull(),
            "base_model_name_or_path": baseModelNameOrPath.map { $0 as Any } ?? NSNull(),
            "revision": NSNull(),
            "inference_mode": true,
            "r": rank,
            "lora_alpha": alphaJSON,
            "lora_dropout": 0.0,
            "target_modules": targets.map(\.huggingFaceName),
            "bias": "none",
            "fan_in_fan_out": false,
            "use_rslora": false,
            "use_dora": false,
            "init_lora_weights": true,
            "layers_to_transform": NSNull(),
            "layers_pattern": NSNull(),
            "rank_pattern": [String: Any](),
            "alpha_pattern": [String: Any](),
            "modules_to_save": NSNull(),
            "megatron_config": NSNull(),
            "megatron_core": "megatron.core",
            "loftq_config": [String: Any](),
            "auto_mapping": NSNull(),
        ]
    }

    /// Reads `file` (an adapter_config.json) and refuses, by key and value, anything that is not plain LoRA
    /// on q/k/v/o/gate/up/down, since pilot would otherwise compute it differently from peft.
    public static func decode(_ data: Data, file: String) throws -> PEFTAdapterConfig {
        guard let o = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw PilotError.invalidArgument("\(file) is not a JSON object; an adapter directory holds peft's adapter_config.json")
        }
        func refuse(_ what: String) -> PilotError {
            .invalidArgument("\(file): \(what); pilot reads plain LoRA adapters (peft_type LORA on q/k/v/o/gate/up/down_proj of every layer, bias none, no DoRA/rsLoRA, no rank or alpha patterns, no modules_to_save)")
        }
        func show(_ v: Any?) -> String {
            guard let v, let d = try? JSONSerialization.data(withJSONObject: v, options: [.fragmentsAllowed, .sortedKeys]) else { return "null" }
            return String(decoding: d, as: UTF8.self)
        }
        func isNull(_ k: String) -> Bool { o[k] == nil || o[k] is NSNull }
        func isFalse(_ k: String) -> Bool { isNull(k) || (o[k] as? Bool) == false }
        func isEmptyDict(_ k: String) -> Bool { isNull(k) || ((o[k] as? [String: Any])?.isEmpty ?? false) }
        guard let type = o["peft_type"] as? String else { throw refuse("peft_type is missing") }
        guard type == "LORA" else { throw refuse("peft_type \"\(type)\" is not supported") }
        guard let r = (o["r"] as? NSNumber)?.intValue, r > 0 else { throw refuse("r is missing or not a positive integer") }
        guard let alpha = (o["lora_alpha"] as? NSNumber)?.floatValue, alpha.isFinite, alpha != 0 else {
            throw refuse("lora_alpha is missing or not a nonzero number")
        }
        let task = o["task_type"] as? String
        if let t = task, t != "CAUSAL_LM" { throw refuse("task_type \"\(t)\" is not supported (only CAUSAL_LM)") }
        if let b = o["bias"] as? String, b != "none" { throw refuse("bias \"\(b)\" is not supported") }
        for k in ["use_dora", "use_rslora", "fan_in_fan_out", "lora_bias", "use_qalora"] where !isFalse(k) {
            throw refuse("\(k) \(show(o[k])) is not supported")
        }
        for k in ["rank_pattern", "alpha_pattern"] where !isEmptyDict(k) { throw refuse("\(k) is not empty") }
        for k in ["layers_to_transform", "layer_replication", "trainable_token_indices", "target_parameters",
                  "exclude_modules"] where !isNull(k) {
            throw refuse("\(k) \(show(o[k])) is not supported")
        }
        if !isNull("modules_to_save"), !((o["modules_to_save"] as? [Any])?.isEmpty ?? false) {
            throw refuse("modules_to_save \(show(o["modules_to_save"])) is not supported")
        }
        guard let names = o["target_modules"] as? [String] else {
            throw refuse("target_modules must be a list of module names (a regular expression is not supported)")
        }
        var targets: [LoRAAdapter.Target] = []
        for n in names {
            guard let t = LoRAAdapter.Target(huggingFaceName: n) else { throw refuse("target module \"\(n)\" is not supported") }
            targets.append(t)
        }
        targets = LoRAAdapter.Target.allCases.filter(targets.contains)
        guard !targets.isEmpty else { throw refuse("target_modules is empty") }
        return PEFTAdapterConfig(rank: r, alpha: alpha, targets: targets,
                                 baseModelNameOrPath: o["base_model_name_or_path"] as? String, taskType: task)
    }
}

/// Writes a LoRAAdapter as a Hugging Face PEFT adapter directory that `peft.PeftModel.from_pretrained(base, DIR)`
/// loads: `adapter_config.json` and `adapter_model.safetensors` (F32, PEFTNames, metadata format=pt), plus any
/// extra files. The directory is assembled as `.NAME.tmp-PID` beside `out` and renamed into place at the
/// end, so `out` is never half-written; an error removes the temporary directory.
public enum PEFTExport {
    /// A further file of the export (a README, connector.safetensors, …), written into the temporary directory.
    public struct ExtraFile {
        /// A plain file name (no `/`), not adapter_config.json or adapter_model.safetensors.
        public let name: String
        /// Creates the file at the given path.
        public let write: (String) throws -> Void
        public init(name: String, write: @escaping (String) throws -> Void) { self.name = name; self.write = write }
        /// A file with these bytes.
        public static func data(_ name: String, _ data: Data) -> ExtraFile {
            ExtraFile(name: name) { path in try data.write(to: URL(fileURLWithPath: path)) }
        }
    }

    public static let configFile = "adapter_config.json"
    public static let weightsFile = "adapter_model.safetensors"

    /// Writes `adapter` for the base model directory `baseModel` (its config.json is read to check every
    /// shape; `base_model_name_or_path` records `baseModelName`, default `baseModel`) into `out`.
    /// An existing `out` is refused unless `force`, which replaces it (a directory only; a file is refused).
    public static func write(adapter: LoRAAdapter, baseModel: String, out: String, force: Bool = false,
                             baseModelName: String? = nil, extraFiles: [ExtraFile] = []) throws {
        let config = try LlamaConfig.load(directory: baseModel)
        try adapter.check(against: config, model: baseModel)
        for f in extraFiles {
            guard !f.name.isEmpty, !f.name.contains("/"), f.name != ".", f.name != "..",
                  f.name != configFile, f.name != weightsFile else {
                throw PilotError.invalidArgument("PEFT export: extra file name '\(f.name)' must be a plain file name other than \(configFile) and \(weightsFile)")
            }
        }
        if Set(extraFiles.map(\.name)).count != extraFiles.count {
            throw PilotError.invalidArgument("PEFT export: an extra file name is given twice (\(extraFiles.map(\.name)))")
        }
        let fm = FileManager.default
        let target = out.hasSuffix("/") && out.count > 1 ? String(out.dropLast()) : out
        var isDir: ObjCBool = false
        let exists = fm.fileExists(atPath: target, isDirectory: &isDir)
        if exists && !isDir.boolValue {
            throw PilotError.invalidArgument("\(target) exists and is not a directory; choose another output directory")
        }
        if exists && !force {
            throw PilotError.invalidArgument("\(target) already exists; choose another output directory or pass --force to replace it")
        }
        let url = URL(fileURLWithPath: target)
        let parent = url.deletingLastPathComponent().path, name = url.lastPathComponent
        guard fm.fileExists(atPath: parent, isDirectory: &isDir), isDir.boolValue else {
            throw PilotError.invalidArgument("\(target): the parent directory \(parent) does not exist; create it first")
        }
        let tmp = parent + "/.\(name).tmp-\(getpid())"
        try? fm.removeItem(atPath: tmp)
        do {
            try fm.createDirectory(atPath: tmp, withIntermediateDirectories: false)
        } catch {
            throw PilotError.message("cannot create '\(tmp)': \(error.localizedDescription); check that \(parent) is writable")
        }
        do {
            let cfg = PEFTAdapterConfig(rank: adapter.rank, alpha: adapter.alpha, targets: adapter.targets,
                                        baseModelNameOrPath: baseModelName ?? baseModel)
            var json = try JSONSerialization.data(withJSONObject: cfg.jsonObject(),
                                                  options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
            json.append(0x0a)
            try json.write(to: URL(fileURLWithPath: tmp + "/" + configFile))
            try writeWeights(adapter, path: tmp + "/" + weightsFile)
            for f in extraFiles { try f.write(tmp + "/" + f.name) }
        } catch {
            try? fm.removeItem(atPath: tmp)
            if let e = error as? PilotError { throw e }
            throw PilotError.message("cannot write the PEFT adapter into '\(tmp)': \(error.localizedDescription); check the disk has room")
        }
        // Into place: an existing directory (force) is moved aside first and removed only once the new one is in.
        let old = parent + "/.\(name).old-\(getpid())"
        if exists {
            try? fm.removeItem(atPath: old)
            guard rename(target, old) == 0 else {
                let e = String(cString: strerror(errno))
                try? fm.removeItem(atPath: tmp)
                throw PilotError.message("cannot move the existing \(target) aside: \(e)")
            }
        }
        guard rename(tmp, target) == 0 else {
            let e = String(cString: strerror(errno))
            if exists { _ = rename(old, target) }
            try? fm.removeItem(atPath: tmp)
            throw PilotError.message("cannot rename '\(tmp)' to '\(target)': \(e)")
        }
        if exists { try? fm.removeItem(atPath: old) }
    }

    /// A README.md for an export: what the files are and the lines that load the adapter with peft.
    /// `extra` (Markdown) is appended, e.g. a list of further files such as connector.safetensors.
    public static func readme(adapter: LoRAAdapter, baseModel: String, title: String = "LoRA adapter exported by pilot",
                              extra: String = "") -> String {
        """
        # \(title)

        A PEFT LoRA adapter (r = \(adapter.rank), lora_alpha = \(adapter.alpha), on \(adapter.targets.map(\.huggingFaceName).joined(separator: ", ")) of all \(adapter.layers) layers) for the base model `\(baseModel)`.

        - `adapter_config.json`, `adapter_model.safetensors`: the adapter in peft's format (F32).

        ```python
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from peft import PeftModel
        base = AutoModelForCausalLM.from_pretrained("\(baseModel)")
        model = PeftModel.from_pretrained(base, "THIS_DIRECTORY")   # or .merge_and_unload() for a plain model
        ```

        With pilot: `pilot generate --model \(baseModel) --adapter THIS_DIRECTORY --prompt "…"`.
        \(extra.isEmpty ? "" : "\n" + extra + "\n")
        """
    }

    /// adapter_model.safetensors: lora_A.weight = Aᵀ [r, in], lora_B.weight = Bᵀ [out, r].
    static func writeWeights(_ adapter: LoRAAdapter, path: String) throws {
        var infos: [TensorInfo] = [], source: [String: (tensor: LoRAAdapter.Tensor, rows: Int, cols: Int)] = [:]
        for l in 0..<adapter.layers {
            for t in adapter.targets {
                let ours = LoRAAdapter.names(layer: l, target: t), theirs = PEFTNames.names(layer: l, target: t)
                for (o, h) in [(ours.a, theirs.a), (ours.b, theirs.b)] {
                    let x = adapter[o]!
                    infos.append(TensorInfo(name: h, shape: [x.shape[1], x.shape[0]], dtype: .f32))
                    source[h] = (x, x.shape[0], x.shape[1])
                }
            }
        }
        try SafetensorsWriter.write(path: path, tensors: infos, metadata: ["format": "pt"]) { info, out in
            let (x, rows, cols) = source[info.name]!
            transpose(x.values, rows: rows, cols: cols, into: out)
        }
    }

    /// out[c, r] = x[r, c].
    static func transpose(_ x: [Float], rows: Int, cols: Int, into out: UnsafeMutableBufferPointer<Float>) {
        x.withUnsafeBufferPointer { p in
            for r in 0..<rows { for c in 0..<cols { out[c * rows + r] = p[r * cols + c] } }
        }
    }
}

/// Reads a Hugging Face PEFT LoRA adapter directory (peft's `save_pretrained`, or PEFTExport) as a LoRAAdapter.
public enum PEFTAdapter {
    /// `adapter_config.json` of `directory`, checked (PEFTAdapterConfig.decode).
    public static func readConfig(directory: String) throws -> PEFTAdapterConfig {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDir), isDir.boolValue else {
            throw PilotError.invalidArgument("adapter '\(directory)' is not a directory; give the directory peft's save_pretrained or `pilot export peft` wrote")
        }
        let file = directory + "/" + PEFTExport.configFile
        guard let data = FileManager.default.contents(atPath: file) else {
            throw PilotError.invalidArgument("\(directory) has no \(PEFTExport.configFile); it is not a PEFT adapter directory")
        }
        return try PEFTAdapterConfig.decode(data, file: file)
    }

    /// The adapter in `directory`: its config, and `adapter_model.safetensors` (F32, F16 or BF16) with one
    /// lora_A and one lora_B weight per target and layer. Tensors it cannot place (other modules, embedding
    /// LoRA, a DoRA magnitude), a target of the config without tensors, or a gap in the layers are refused by name.
    public static func read(directory: String) throws -> LoRAAdapter {
        let cfg = try readConfig(directory: directory)
        let path = directory + "/" + PEFTExport.weightsFile
        guard FileManager.default.fileExists(atPath: path) else {
            let bin = FileManager.default.fileExists(atPath: directory + "/adapter_model.bin")
            throw PilotError.invalidArgument("\(directory) has no \(PEFTExport.weightsFile)\(bin ? " (only a pickled adapter_model.bin: re-save it with save_pretrained(DIR, safe_serialization=True))" : "")")
        }
        let file = try SafetensorsFile(path: path)
        var layers = 0
        for info in file.tensorInfos {
            guard let (l, t, _) = PEFTNames.parse(info.name) else {
                throw PilotError.invalidArgument("\(path): tensor '\(info.name)' is not a LoRA weight of q/k/v/o/gate/up/down_proj (expected names like '\(PEFTNames.names(layer: 0, target: .q).a)'); pilot reads plain LoRA adapters of a LlamaForCausalLM")
            }
            guard cfg.targets.contains(t) else {
                throw PilotError.invalidArgument("\(path): tensor '\(info.name)' is for \(t.huggingFaceName), which target_modules in \(PEFTExport.configFile) does not list")
            }
            layers = max(layers, l + 1)
        }
        guard layers > 0 else { throw PilotError.invalidArgument("\(path) holds no LoRA tensors") }
        var tensors: [LoRAAdapter.Tensor] = []
        for l in 0..<layers {
            for t in cfg.targets {
                let ours = LoRAAdapter.names(layer: l, target: t), theirs = PEFTNames.names(layer: l, target: t)
                for (o, h, isB) in [(ours.a, theirs.a, false), (ours.b, theirs.b, true)] {
                    guard let info = file.info(h) else {
                        throw PilotError.invalidArgument("\(path): tensor '\(h)' is missing (\(PEFTExport.configFile) targets \(t.huggingFaceName) and the file has layers up to \(layers - 1))")
                    }
                    guard info.shape.count == 2, info.shape[isB ? 1 : 0] == cfg.rank else {
                        throw PilotError.invalidArgument("\(path): tensor '\(h)' has shape \(info.shape); expected \(isB ? "[out, \(cfg.rank)]" : "[\(cfg.rank), in]") for r = \(cfg.rank) in \(PEFTExport.configFile)")
                    }
                    let rows = info.shape[0], cols = info.shape[1]
                    let buf = UnsafeMutableBufferPointer<Float>.allocate(capacity: max(1, info.count))
                    defer { buf.deallocate() }
                    let stored = UnsafeMutableBufferPointer(rebasing: buf[0..<info.count])
                    try file.readFloat32(h, into: stored)
                    var values = [Float](repeating: 0, count: info.count)
                    values.withUnsafeMutableBufferPointer { PEFTExport.transpose(Array(stored), rows: rows, cols: cols, into: $0) }
                    tensors.append(LoRAAdapter.Tensor(name: o, shape: [cols, rows], values: values))
                }
            }
        }
        do {
            return try LoRAAdapter(rank: cfg.rank, alpha: cfg.alpha, targets: cfg.targets, layers: layers, tensors: tensors)
        } catch PilotError.invalidArgument(let m) {
            throw PilotError.invalidArgument("\(path): \(m)")
        }
    }
}
