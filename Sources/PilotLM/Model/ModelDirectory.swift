import Foundation
import PilotCore

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

    /// Stored element types of the checkpoint's tensors and how many tensors have each.
    public var storedDTypes: [String: Int] {
        var dt: [String: Int] = [:]
        for i in checkpoint.tensorInfos { dt[i.dtype.rawValue, default: 0] += 1 }
        return dt
    }
}
