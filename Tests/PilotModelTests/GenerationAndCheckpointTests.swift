import Foundation
import PilotModel
import PilotTensor
import Testing

@Suite("Generation and checkpoints")
struct GenerationAndCheckpointTests {
    @Test func kvCacheDecodingMatchesFullRecomputation() throws {
        let c = tinyConfig()
        let m = try MLLM(config: c, variant: .pilotStage2, maxBatch: 2, seed: 11)
        // train a little so the LoRA path is not trivial
        for _ in 0..<3 { try m.trainStep(tinyBatch(c, pixels: false), learningRate: 1e-2) }
        let visual = tinyBatch(c, pixels: false).visual
        let prompts: [[Int32]] = [[1, 5, 7], [1, 9]]
        let fast = try m.generate(visual: visual, prompts: prompts, maxNewTokens: 6)
        let slow = try m.generate(visual: visual, prompts: prompts, maxNewTokens: 6, useKVCache: false)
        #expect(fast == slow)
        #expect(fast[0].count == 5 && fast[1].count == 6)  // context 12 − 4 visual − 3 prompt tokens leaves 5 slots
        let eos = fast[1][2]
        let stopped = try m.generate(visual: visual, prompts: prompts, maxNewTokens: 6, eosToken: eos)
        #expect(stopped[1].last == eos && stopped[1].count <= 3)
    }

    @Test func saveAndLoadASubsetByName() throws {
        let c = tinyConfig()
        let a = try MLLM(config: c, variant: .pilotStage1, maxBatch: 2, seed: 1)
        try a.trainStep(tinyBatch(c, pixels: false), learningRate: 1e-2)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("pilot-model-\(getpid()).h5").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try a.save(to: path, groups: ["lora", "connector/task_adapter"])
        let b = try MLLM(config: c, variant: .pilotStage1, maxBatch: 2, seed: 2)
        let clientBefore = try b.tensor(named: "connector/client_adapter/fc1/weight").values
        let loaded = try b.load(from: path)
        let expected = try a.parameterNames(groups: ["lora", "connector/task_adapter"])
        #expect(loaded.count == expected.count)
        #expect(try b.trainableView(group: "lora").values == a.trainableView(group: "lora").values)
        #expect(try b.tensor(named: "connector/task_adapter/fc2/bias").values == a.tensor(named: "connector/task_adapter/fc2/bias").values)
        #expect(try b.tensor(named: "connector/client_adapter/fc1/weight").values == clientBefore)
        #expect(throws: (any Error).self) { try b.load(from: path, names: ["connector/client_adapter/fc1/weight"]) }
    }
}
