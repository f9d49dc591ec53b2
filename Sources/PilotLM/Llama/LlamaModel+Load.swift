import Foundation
import PilotCore

extension LlamaModel {
    /// Loads a Hugging Face directory: `config.json` and `model.safetensors` (F32, F16 or BF16).
    public static func load(directory: String, maxBatch: Int = 1, maxTokens: Int = 512,
                            maxContext: Int? = nil) throws -> LlamaModel {
        let config = try LlamaConfig.load(directory: directory)
        let file = directory + "/model.safetensors"
        guard FileManager.default.fileExists(atPath: file) else {
            throw PilotError.notFound(file: file, object: "")
        }
        let weights = try LlamaWeights(config: config, source: try SafetensorsFile(path: file))
        let context = maxContext ?? min(config.maxPositionEmbeddings, 4096)
        return try LlamaModel(config: config, weights: weights, maxBatch: maxBatch,
                              maxTokens: min(maxTokens, context), maxContext: context)
    }
}
