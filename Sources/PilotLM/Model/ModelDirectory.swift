import Foundation
import PilotCore
import PilotTensor

/// Everything a model directory holds but the weights' values, read and checked against each other
/// without allocating the weights: pilot-model.json (if any), config.json (every size capped),
/// tokenizer.json, the chat layout, the safetensors checkpoint (every byte range inside its file) and
/// its tensors against the config (`LlamaWeights.check`), and the manifest's parameter count against
/// the tensors. `PretrainedLM` (so `pilot model info` and every `--model` command) loads through it, and
/// `pilot model import` runs it on the directory it assembled before moving it into place, so an import
/// never leaves a directory that would not load.
public struct ModelDirectory {
    public let directory: String
    public let manifest: ModelManifest?
    public let config: LlamaConfig
    public let tokenizer: BPETokenizer
    public let chat: PretrainedLM.ChatLayout
    public let checkpoint: SafetensorsCheckpoint
    /// Parameters the config implies and the checkpoint holds (the tied head counted once).
    public let parameterCount: Int

    public init(directory: String, chatFormat override: ChatFormat? = nil) throws {
        self.directory = directory
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDir), isDir.boolValue else {
            throw PilotError.invalidArgument("--model '\(directory)' is not a directory; import a model first (`pilot model import FILE.gguf --out DIR`, or scripts/get_smollm2.sh)")
        }
        manifest = try ModelManifest.read(directory: directory)
        config = try LlamaConfig.load(directory: directory)
        let tokPath = directory + "/tokenizer.json"
        guard FileManager.default.fileExists(atPath: tokPath) else {
            throw PilotError.invalidArgument("\(directory) has no tokenizer.json; re-import the model with `pilot model import`")
        }
        tokenizer = try BPETokenizer(tokenizerJSON: tokPath)
        chat = try PretrainedLM.ChatLayout(directory: directory, manifest: manifest, override: override)
        checkpoint = try SafetensorsCheckpoint(directory: directory)
        parameterCount = try LlamaWeights.check(config, against: checkpoint)
        if let m = manifest {
            // The import records the parameters it wrote; the sum over every stored tensor is what it counted.
            let stored = checkpoint.tensorInfos.reduce(0) { $0 + $1.count }
            guard m.parameters == stored else {
                throw PilotError.invalidArgument("\(directory)/\(ModelManifest.fileName) says \(m.parameters) parameters but the checkpoint holds \(stored) (config.json implies \(parameterCount)); the directory was changed after the import: import the model again")
            }
        }
    }

    /// The dtype the directory holds its matrices in: q8 when any is stored as Q8_0 blocks, bf16 when
    /// any is BF16, else f32 (F16 converts to any of the three as well as F32 does).
    public var heldDType: BaseDType {
        let stored = Set(checkpoint.tensorInfos.filter { $0.shape.count == 2 }.map(\.dtype))
        return stored.contains(.q8_0) ? .q8 : stored.contains(.bf16) ? .bf16 : .f32
    }

    /// Refuses a base dtype the directory cannot give without rounding twice: a q8 directory holds values
    /// that bf16 would round again (q·d needs up to 19 significant bits; f32 holds them exactly).
    /// - Parameter key: the setting that asked for `dtype`, for the message.
    public func check(dtype: BaseDType, key: String) throws {
        let held = heldDType
        guard !(held == .q8 && dtype == .bf16) else {
            throw PilotError.invalidArgument("\(key) = \"\(dtype.rawValue)\" but \(directory) holds its matrices in q8 (imported with --dtype q8), which bf16 would round a second time; this directory gives q8 or f32: set \(key) = \"q8\", or import the original model again with --dtype bf16")
        }
    }

    /// Stored element types of the checkpoint's tensors and how many tensors have each.
    public var storedDTypes: [String: Int] {
        var dt: [String: Int] = [:]
        for i in checkpoint.tensorInfos { dt[i.dtype.rawValue, default: 0] += 1 }
        return dt
    }
}
