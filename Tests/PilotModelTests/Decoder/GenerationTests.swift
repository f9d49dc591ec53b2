import Foundation
import Testing
import PilotCore
import PilotLM
import PilotModel
import PilotTestSupport

@Suite("Llama generation and sampling", .serialized)
struct GenerationTests {
    @Test("greedy generation equals transformers' generate(do_sample=False)", arguments: TinyLlamaFixture.variants)
    func greedyMatchesTransformers(variant: String) throws {
        let f = try TinyLlamaFixture(variant)
        // maxTokens 4 < prompt length: the prompt is prefilled in chunks
        let gen = Generator(model: try f.model(maxBatch: 1, maxTokens: 4, maxContext: 32))
        var streamed: [Int32] = []
        let ids = try gen.generate(promptIDs: f.promptIDs, maxNewTokens: f.greedyNewIDs.count) { streamed.append($0) }
        print("tiny-\(variant): ours \(ids) transformers \(f.greedyNewIDs)")
        #expect(ids == f.greedyNewIDs)
        #expect(streamed == ids && gen.stopReason == .maxNewTokens)
    }

    @Test("a stop id ends generation and is not returned; a full context stops with a message")
    func stops() throws {
        let f = try TinyLlamaFixture("gqa-tied")
        let gen = Generator(model: try f.model(maxBatch: 1, maxTokens: 8, maxContext: 32))
        let stop = f.greedyNewIDs[3]
        let first = f.greedyNewIDs.firstIndex(of: stop)!
        let ids = try gen.generate(promptIDs: f.promptIDs, maxNewTokens: 10, stopIDs: [stop])
        #expect(ids == Array(f.greedyNewIDs[0..<first]) && gen.stopReason == .stopToken(stop))
        let small = Generator(model: try f.model(maxBatch: 1, maxTokens: 8, maxContext: 9))
        let cut = try small.generate(promptIDs: f.promptIDs, maxNewTokens: 10)
        // 6 prompt positions + 3 decoded fill 9; the token predicted from the last position is the 4th
        #expect(cut == Array(f.greedyNewIDs[0..<4]))
        #expect(small.stopReason == .contextFull(9) && "\(small.stopReason)".contains("context full"))
        #expect(throws: PilotError.self) { try small.generate(promptIDs: Array(repeating: 5, count: 9), maxNewTokens: 1) }
    }

    @Test("argmax takes the lowest id on ties")
    func argmaxTies() {
        let l: [Float] = [0, 3, 1, 3, -2]
        #expect(l.withUnsafeBufferPointer { Sampler.argmax($0.baseAddress!, count: 5) } == 1)
    }

    @Test("seeded sampling is reproducible, follows the softmax, and top-p keeps only the nucleus")
    func sampling() throws {
        let logits: [Float] = [2.0, 1.0, 0.0, -1.0, 0.5, 1.5]
        func draw(_ s: Sampling, _ n: Int) throws -> [Int32] {
            let sampler = try Sampler(s, vocabSize: logits.count)
            return logits.withUnsafeBufferPointer { p in (0..<n).map { _ in sampler.next(p.baseAddress!) } }
        }
        let a = try draw(.temperature(1, seed: 7), 4000), b = try draw(.temperature(1, seed: 7), 4000)
        #expect(a == b)
        #expect(try draw(.temperature(1, seed: 8), 4000) != a)
        // frequencies within 0.03 of softmax(logits)
        let e = logits.map { exp(Double($0)) }, z = e.reduce(0, +)
        for i in logits.indices {
            let freq = Double(a.filter { $0 == Int32(i) }.count) / Double(a.count)
            #expect(abs(freq - e[i] / z) < 0.03, "id \(i): \(freq) vs \(e[i] / z)")
        }
        // softmax: [0.39, 0.14, 0.05, 0.02, 0.09, 0.24] → top_p 0.6 keeps ids 0 and 5 only
        let nucleus = Set(try draw(.temperature(1, topP: 0.6, seed: 3), 500))
        #expect(nucleus == [0, 5])
        #expect(Set(try draw(.temperature(1, topP: 0.01, seed: 3), 50)) == [0])
        #expect(Set(try draw(.temperature(0.01, seed: 1), 50)) == [0])
        #expect(throws: PilotError.self) { _ = try Sampler(.temperature(0), vocabSize: 6) }
        #expect(throws: PilotError.self) { _ = try Sampler(.temperature(1, topP: 1.5), vocabSize: 6) }
    }

    @Test("sampled generation with a seed is reproducible")
    func sampledGeneration() throws {
        let f = try TinyLlamaFixture("qwen2")
        let gen = Generator(model: try f.model(maxBatch: 1, maxTokens: 8, maxContext: 32))
        let s = Sampling.temperature(0.8, topP: 0.9, seed: 42)
        let a = try gen.generate(promptIDs: f.promptIDs, maxNewTokens: 12, sampling: s)
        let b = try gen.generate(promptIDs: f.promptIDs, maxNewTokens: 12, sampling: s)
        #expect(a == b && a.count == 12)
    }
}
