import Foundation
import PilotCore
import PilotTensor

/// `pilot model import`: a GGUF file or a Hugging Face checkpoint directory becomes one model directory
/// (docs/models.md). Everything is checked before anything is written (architecture, config sizes and
/// keys, the tensors against the config, tokenizer, chat template), the weights are converted tensor by
/// tensor (one tensor in memory at a time, read from a memory map), and the directory is assembled under
/// a temporary name, checked as `pilot model info` would load it (`ModelDirectory`), and renamed into
/// place at the end, so an error leaves nothing half-written and no directory that would not load.
public enum ModelImport {
    public struct Options: Sendable {
        /// Overrides the chat format detected from the template (and is required when there is none).
        public var chatFormat: ChatFormat?
        /// Replace an existing directory that holds another model or another import.
        public var force = false
        /// The dtype the matrices are written in (norms stay F32): F32, BF16, or q8 (an I8 tensor and its
        /// F16 `_scale` per matrix: GGUF's Q8_0 in two arrays, `SafetensorsFile`).
        public var dtype: BaseDType = .f32
        public init(chatFormat: ChatFormat? = nil, force: Bool = false, dtype: BaseDType = .f32) {
            self.chatFormat = chatFormat; self.force = force; self.dtype = dtype
        }
    }

    public enum Outcome: Sendable { case imported(ModelManifest), alreadyImported(ModelManifest) }

    public static func run(source: String, out: String, options: Options = Options(),
                           progress: (String) -> Void = { _ in }) throws -> Outcome {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: source, isDirectory: &isDir) else {
            throw PilotError.notFound(file: source, object: "")
        }
        let isGGUF = !isDir.boolValue
        // Refuse an unsupported architecture or config, or weights that do not match it, before the
        // (slow) hashing and conversion.
        if isGGUF {
            let src = try GGUFLlamaSource(file: GGUFFile(path: source))
            try LlamaWeights.check(try LlamaConfig.decode(json: try src.huggingFaceConfigJSON(), file: source + " (metadata)"), against: src)
        } else {
            try LlamaWeights.check(try LlamaConfig.load(directory: source), against: try SafetensorsCheckpoint(directory: source))
        }
        progress("hashing \(source)")
        let sourceHashes = try isGGUF ? [URL(fileURLWithPath: source).lastPathComponent: sha256(file: source)] : weightFileHashes(directory: source)

        if let existing = try? ModelManifest.read(directory: out), !options.force {
            if existing.sourceSHA256 == sourceHashes, existing.importedBy == "pilot \(PilotLMVersion.string)",
               options.chatFormat.map({ $0.rawValue == existing.chatFormat }) ?? true, (existing.dtype ?? "f32") == options.dtype.rawValue {
                return .alreadyImported(existing)
            }
            if existing.sourceSHA256 == sourceHashes {
                progress("\(out) was imported from the same source by \(existing.importedBy), or with another chat format or dtype; importing it again")
            } else {
                throw PilotError.invalidArgument("'\(out)' already holds a model imported from \(existing.source); choose another --out or pass --force to replace it")
            }
        } else if FileManager.default.fileExists(atPath: out), !options.force,
                  let items = try? FileManager.default.contentsOfDirectory(atPath: out), !items.isEmpty {
            throw PilotError.invalidArgument("'\(out)' exists and is not an imported model directory; choose another --out or pass --force to replace it")
        }

        let created = try createParents(of: out)
        let staging = out + ".tmp-\(getpid())"
        try? FileManager.default.removeItem(atPath: staging)
        do {
            try FileManager.default.createDirectory(atPath: staging, withIntermediateDirectories: false)
            var manifest = try isGGUF
                ? importGGUF(source, into: staging, options: options, progress: progress)
                : importHuggingFace(source, into: staging, options: options, progress: progress)
            manifest.sourceSHA256 = sourceHashes
            manifest.dtype = options.dtype == .f32 ? nil : options.dtype.rawValue
            progress("hashing the imported files")
            for name in try FileManager.default.contentsOfDirectory(atPath: staging).sorted() {
                manifest.files[name] = try sha256(file: staging + "/" + name)
            }
            try manifest.write(directory: staging)
            // What `pilot model info` reads, read and checked the same way, before the directory takes its name.
            do { _ = try ModelDirectory(directory: staging) } catch let e as PilotError {
                throw PilotError.invalidArgument("\(source): the imported directory would not load, so nothing was written to '\(out)': \(e)")
            }
            if FileManager.default.fileExists(atPath: out) { try FileManager.default.removeItem(atPath: out) }
            try FileManager.default.moveItem(atPath: staging, toPath: out)
            return .imported(manifest)
        } catch {
            try? FileManager.default.removeItem(atPath: staging)
            for dir in created.reversed() { _ = rmdir(dir) }  // only the parents this import made, and only if empty
            throw error
        }
    }

    /// Creates the missing parent directories of `out`; returns them, outermost first.
    static func createParents(of out: String) throws -> [String] {
        var missing: [String] = []
        var dir = URL(fileURLWithPath: out).deletingLastPathComponent()
        while !FileManager.default.fileExists(atPath: dir.path), dir.path != "/" {
            missing.insert(dir.path, at: 0)
            dir = dir.deletingLastPathComponent()
        }
        if let deepest = missing.last { try FileManager.default.createDirectory(atPath: deepest, withIntermediateDirectories: true) }
        return missing
    }

    // MARK: GGUF

    static func importGGUF(_ path: String, into dir: String, options: Options, progress: (String) -> Void) throws -> ModelManifest {
        progress("reading \(path)")
        let gguf = try GGUFFile(path: path)
        let source = try GGUFLlamaSource(file: gguf)
        let configData = try source.huggingFaceConfigJSON()

        let tokenizer = try BPETokenizer.fromGGUF(gguf)
        let template = try? gguf.string("tokenizer.chat_template")
        let (chat, system) = try chatFormat(template: template, file: path + " (tokenizer.chat_template)", override: options.chatFormat)

        try atomicWrite(configData, to: dir + "/config.json")
        try atomicWrite(try tokenizer.tokenizerJSON(), to: dir + "/tokenizer.json")
        try atomicWrite(try tokenizerConfigJSON(tokenizer: tokenizer, chatTemplate: template,
                                                 maxLength: (try? gguf.int("llama.context_length")) ?? nil),
                        to: dir + "/tokenizer_config.json")
        let params = try writeWeights(source, to: dir + "/model.safetensors", dtype: options.dtype, progress: progress)
        return ModelManifest(source: path, sourceFormat: "gguf", sourceSHA256: [:], sourceDTypes: dtypeCounts(gguf.tensorInfos),
                             chatFormat: chat.rawValue, defaultSystemPrompt: system, parameters: params, files: [:],
                             importedBy: "pilot \(PilotLMVersion.string)")
    }

    /// tokenizer_config.json for a GGUF import: the special tokens and the chat template, as
    /// transformers reads them.
    static func tokenizerConfigJSON(tokenizer: BPETokenizer, chatTemplate: String?, maxLength: Int?) throws -> Data {
        var obj: [String: Any] = ["tokenizer_class": "PreTrainedTokenizerFast", "add_bos_token": tokenizer.addsBOS,
                                  "clean_up_tokenization_spaces": false]
        if let id = tokenizer.bosID { obj["bos_token"] = tokenizer.piece(id) }
        if let id = tokenizer.eosID { obj["eos_token"] = tokenizer.piece(id) }
        if let id = tokenizer.padID { obj["pad_token"] = tokenizer.piece(id) }
        if let id = tokenizer.unkID { obj["unk_token"] = tokenizer.piece(id) }
        if let t = chatTemplate { obj["chat_template"] = t }
        if let n = maxLength { obj["model_max_length"] = n }
        return try JSONSerialization.data(withJSONObject: obj, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
    }

    // MARK: Hugging Face directory

    static func importHuggingFace(_ dir: String, into out: String, options: Options, progress: (String) -> Void) throws -> ModelManifest {
        // run() has already decoded and checked config.json.
        let tokPath = dir + "/tokenizer.json"
        guard FileManager.default.fileExists(atPath: tokPath) else {
            throw PilotError.invalidArgument("\(dir) has no tokenizer.json: pilot needs the fast-tokenizer file of the model (save it with AutoTokenizer.from_pretrained(...).save_pretrained(DIR))")
        }
        _ = try BPETokenizer(tokenizerJSON: tokPath)
        let tcPath = dir + "/tokenizer_config.json"
        var template: String?
        if let data = try readSmallFile(tcPath, limit: smallFileLimit, what: "a tokenizer_config.json") {
            guard let obj = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
                throw PilotError.invalidArgument("\(tcPath) is not a JSON object")
            }
            template = obj["chat_template"] as? String
        } else if options.chatFormat == nil {
            throw PilotError.invalidArgument("\(dir) has no tokenizer_config.json, so the chat format is unknown; add it or pass --chat-format chatml|llama3|plain")
        }
        let (chat, system) = try chatFormat(template: template, file: tcPath, override: options.chatFormat)

        let source = try SafetensorsCheckpoint(directory: dir)
        for name in ["config.json", "tokenizer.json", "tokenizer_config.json", "generation_config.json"]
        where FileManager.default.fileExists(atPath: dir + "/" + name) {
            try FileManager.default.copyItem(atPath: dir + "/" + name, toPath: out + "/" + name)
        }
        let params = try writeWeights(source, to: out + "/model.safetensors", dtype: options.dtype, progress: progress)
        return ModelManifest(source: dir, sourceFormat: "safetensors", sourceSHA256: [:], sourceDTypes: dtypeCounts(source.tensorInfos),
                             chatFormat: chat.rawValue, defaultSystemPrompt: system, parameters: params, files: [:],
                             importedBy: "pilot \(PilotLMVersion.string)")
    }

    static func weightFileHashes(directory: String) throws -> [String: String] {
        let names = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".safetensors") }.sorted()
        guard !names.isEmpty else {
            throw PilotError.invalidArgument("\(directory) has no .safetensors weights (model.safetensors or model-0000k-of-0000n.safetensors); pilot does not read PyTorch .bin checkpoints: save with save_pretrained(DIR, safe_serialization=True)")
        }
        var out: [String: String] = [:]
        for n in names { out[n] = try sha256(file: directory + "/" + n) }
        return out
    }

    // MARK: Shared steps

    static func chatFormat(template: String?, file: String, override: ChatFormat?) throws -> (ChatFormat, String?) {
        if let f = override {
            let detected = try? ChatFormat.detect(chatTemplate: template, file: file)
            return (f, detected?.format == f ? detected?.defaultSystem : nil)
        }
        let d = try ChatFormat.detect(chatTemplate: template, file: file)
        return (d.format, d.defaultSystem)
    }

    /// Writes every tensor of `source`, one at a time, leaving out the extras the loader ignores
    /// (`LlamaWeights.isIgnoredExtra`): matrices in `dtype` (BF16; or for q8 an I8 tensor and its F16
    /// `_scale`, copied block for block from a GGUF Q8_0 tensor, `readEncoded`), the rest, and a matrix
    /// whose rows do not split into q8's blocks, in F32. Returns the parameter count.
    static func writeWeights(_ source: TensorSource, to path: String, dtype: BaseDType = .f32, progress: (String) -> Void) throws -> Int {
        let tensors = source.tensorInfos.filter { !LlamaWeights.isIgnoredExtra($0.name) }
        func stored(_ t: TensorInfo) -> BaseDType { t.shape.count == 2 && dtype.fits(cols: t.shape[1]) ? dtype : .f32 }
        var infos: [TensorInfo] = [], logical: [String: TensorInfo] = [:]
        for t in tensors {
            switch stored(t) {
            case .f32: infos.append(TensorInfo(name: t.name, shape: t.shape, dtype: .f32))
            case .bf16: infos.append(TensorInfo(name: t.name, shape: t.shape, dtype: .bf16))
            case .q8:
                infos.append(TensorInfo(name: t.name, shape: t.shape, dtype: .i8))
                infos.append(TensorInfo(name: SafetensorsFile.scaleName(t.name), shape: [t.shape[0], t.shape[1] / 32], dtype: .f16))
            }
            logical[t.name] = t
        }
        var done = 0
        var blocks: [String: UnsafeMutableRawBufferPointer] = [:]   // q8 blocks of a matrix until its scales are written
        defer { for b in blocks.values { b.deallocate() } }
        func q8Blocks(_ name: String) throws -> UnsafeMutableRawBufferPointer {
            if let b = blocks[name] { return b }
            let t = logical[name]!, b = UnsafeMutableRawBufferPointer.allocate(byteCount: max(1, t.count / 32 * 34), alignment: 2)
            try source.readEncoded(name, as: .q8, into: UnsafeMutableRawBufferPointer(rebasing: b[0..<(t.count / 32 * 34)]))
            blocks[name] = b
            return b
        }
        try SafetensorsWriter.writeBytes(path: path, tensors: infos, metadata: ["format": "pt"], fill: { info, out in
            switch info.dtype {
            case .f32: try source.readFloat32(info.name, into: out.bindMemory(to: Float.self))
            case .bf16: try source.readEncoded(info.name, as: .bf16, into: out)
            case .i8:
                let b = try q8Blocks(info.name)
                for k in 0..<(info.count / 32) { (out.baseAddress! + 32 * k).copyMemory(from: b.baseAddress! + 34 * k + 2, byteCount: 32) }
            default:  // the F16 scales of a q8 matrix, written after its I8 values (names sort so)
                let name = String(info.name.dropLast("_scale".count))
                let b = try q8Blocks(name)
                for k in 0..<info.count { (out.baseAddress! + 2 * k).copyMemory(from: b.baseAddress! + 34 * k, byteCount: 2) }
                b.deallocate()
                blocks[name] = nil
                return
            }
            done += 1
            if done % 25 == 0 || done == tensors.count { progress("converted \(done)/\(tensors.count) tensors") }
        })
        return tensors.reduce(0) { $0 + $1.count }
    }

    static func dtypeCounts(_ infos: [TensorInfo]) -> [String: Int] {
        var out: [String: Int] = [:]
        for i in infos { out[i.dtype.rawValue, default: 0] += 1 }
        return out
    }
}

/// Recorded in pilot-model.json; bump it whenever the import writes different files, so that
/// scripts/get_smollm2.sh re-imports a directory an older pilot made.
public enum PilotLMVersion { public static let string = "0.2.1" }
