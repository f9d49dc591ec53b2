import Foundation
import PilotCore
import PilotLM
import PilotModel
import PilotTestSupport

/// One tiny transformers model of Tests/Fixtures/lm/tiny-<variant>/ (Tests/Fixtures/lm/make_lm_fixtures.py) and its reference.
struct TinyLlamaFixture {
    static let variants = ["gqa-tied", "mha-untied", "attn-bias", "qwen2", "bf16"]

    let dir: String
    let config: LlamaConfig
    let weights: LlamaWeights
    let inputIDs: [[Int32]]        // [B][T]
    let logits: [[[Float]]]        // [B][T][V]
    let promptIDs: [Int32]
    let greedyNewIDs: [Int32]

    init(_ variant: String) throws {
        dir = LMFixtures.path("tiny-" + variant)
        config = try LlamaConfig.load(directory: dir)
        weights = try LlamaWeights(config: config, source: try SafetensorsFile(path: dir + "/model.safetensors"))
        let json = try JSONSerialization.jsonObject(with: try Data(contentsOf: URL(fileURLWithPath: dir + "/expected.json")))
        guard let e = json as? [String: Any], let ids = e["input_ids"] as? [[Int]], let lg = e["logits"] as? [[[Double]]],
              let p = e["prompt_ids"] as? [Int], let g = e["greedy_new_ids"] as? [Int] else {
            throw PilotError.message("\(dir)/expected.json: unexpected layout")
        }
        inputIDs = ids.map { $0.map(Int32.init) }
        logits = lg.map { $0.map { $0.map(Float.init) } }
        promptIDs = p.map(Int32.init)
        greedyNewIDs = g.map(Int32.init)
    }

    func model(maxBatch: Int = 2, maxTokens: Int = 16, maxContext: Int = 32) throws -> LanguageModel {
        try LanguageModel(llama: config, weights: weights, maxBatch: maxBatch, maxTokens: maxTokens, maxContext: maxContext)
    }
}
