import Foundation
import PilotCore

extension LlamaModel {
    /// Loads a Hugging Face directory: `config.json` and `model.safetensors` or the shards of
    /// `model.safetensors.index.json` (F32, F16 or BF16, converted to Float32 on load).
    /// `maxContext` defaults to `max_position_embeddings`, capped at 4096.
    public static func load(directory: String, maxBatch: Int = 1, maxTokens: Int = 512,
                            maxContext: Int? = nil) throws -> LlamaModel {
        let config = try LlamaConfig.load(directory: directory)
        let weights = try LlamaWeights(config: config, source: try SafetensorsCheckpoint(directory: directory))
        let context = maxContext ?? min(config.maxPositionEmbeddings, 4096)
        return try LlamaModel(config: config, weights: weights, maxBatch: maxBatch,
                              maxTokens: min(maxTokens, context), maxContext: context)
    }

    /// Loads a llama-architecture GGUF file (quantized tensors dequantized to Float32), its config taken
    /// from the GGUF metadata.
    public static func load(gguf path: String, maxBatch: Int = 1, maxTokens: Int = 512,
                            maxContext: Int? = nil) throws -> LlamaModel {
        let source = try GGUFLlamaSource(file: try GGUFFile(path: path))
        let config = try LlamaConfig.decode(json: try source.huggingFaceConfigJSON(), file: path)
        let weights = try LlamaWeights(config: config, source: source)
        let context = maxContext ?? min(config.maxPositionEmbeddings, 4096)
        return try LlamaModel(config: config, weights: weights, maxBatch: maxBatch,
                              maxTokens: min(maxTokens, context), maxContext: context)
    }
}
