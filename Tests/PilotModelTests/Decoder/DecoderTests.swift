import Foundation
import Testing
import PilotCore
import PilotLM
import PilotModel
import PilotTestSupport
import PilotTensor

/// The engine against transformers on tiny random models (GQA/MHA, tied/untied, biases, Qwen2, BF16 storage).
@Suite("Llama engine vs transformers", .serialized)
struct LlamaTests {
    @Test("logits of every position equal transformers' to 1e-5", arguments: TinyLlamaFixture.variants)
    func logitsMatch(variant: String) throws {
        let f = try TinyLlamaFixture(variant)
        let model = try f.model()
        let cache = model.makeCache(batch: f.inputIDs.count)
        let ours = try model.forward(f.inputIDs, cache: cache, logits: .all)
        let theirs = f.logits.flatMap { $0.flatMap { $0 } }
        let d = maxAbsDiff(ours, theirs)
        print("tiny-\(variant): max |logit - transformers| = \(d) over \(theirs.count) logits; first \(ours.prefix(3)) vs \(theirs.prefix(3))")
        #expect(d <= 1e-5)
    }

    @Test("the same logits on 2 threads")
    func threadsAgree() throws {
        engineThreadsLock.lock(); defer { engineThreadsLock.unlock() }
        let f = try TinyLlamaFixture("gqa-tied")
        let model = try f.model()
        let one = try model.forward(f.inputIDs, cache: model.makeCache(batch: 2))
        Parallel.configure(threads: 2)
        defer { Parallel.configure(threads: 1) }
        let two = try model.forward(f.inputIDs, cache: model.makeCache(batch: 2))
        let d = maxAbsDiff(one, two)
        print("1 vs 2 threads: max diff \(d)")
        #expect(d <= 1e-6)
    }

    /// Batch 2 (decode rows through sgemm) and batch 1 (one row: the matrix-vector path of `FrozenMatrix.gemv`).
    @Test("KV-cache decoding gives a full prefill's logits at every step", arguments: ["gqa-tied", "mha-untied", "qwen2"])
    func cacheDecodingMatchesPrefill(variant: String) throws {
        let f = try TinyLlamaFixture(variant)
        let model = try f.model()
        let V = f.config.vocabSize, T = f.inputIDs[0].count, start = 5
        for ids in [f.inputIDs, [f.inputIDs[1]]] {
            let B = ids.count, ref = B == 1 ? [f.logits[1]] : f.logits
            let cache = model.makeCache(batch: B)
            // prefill the first `start` tokens, then one token per sequence per step
            var worst: Float = 0
            let first = try model.forward(ids.map { Array($0[0..<start]) }, cache: cache, logits: .last)
            for b in 0..<B { worst = max(worst, maxAbsDiff(Array(first[(b * V)..<((b + 1) * V)]), ref[b][start - 1])) }
            for t in start..<T {
                let step = try model.forward(ids.map { [$0[t]] }, cache: cache, logits: .last)
                for b in 0..<B { worst = max(worst, maxAbsDiff(Array(step[(b * V)..<((b + 1) * V)]), ref[b][t])) }
            }
            #expect(cache.length == T)
            print("tiny-\(variant), batch \(B): KV-cache decode vs transformers' full prefill: max diff \(worst)")
            #expect(worst <= 1e-5)
        }
    }

    /// Counted only when scripts/bench/malloc_count.c is preloaded (LD_PRELOAD=.build-engine/libmalloc_count.so).
    @Test("decode steps and greedy sampling allocate nothing after the first", .enabled(if: dlsym(nil, "pilot_alloc_count") != nil))
    func decodeAllocatesNothing() throws {
        engineThreadsLock.lock(); defer { engineThreadsLock.unlock() }
        guard let sym = dlsym(nil, "pilot_alloc_count") else { return }
        let count = unsafeBitCast(sym, to: (@convention(c) () -> UInt).self)
        let f = try TinyLlamaFixture("gqa-tied")
        // B = 2 decodes through sgemm, B = 1 through FrozenMatrix.gemv
        for threads in [1, 2] {
            for B in [2, 1] {
                Parallel.configure(threads: threads)
                defer { Parallel.configure(threads: 1) }
                let model = try f.model(maxBatch: 2, maxTokens: 16, maxContext: 32)
                let sampler = try Sampler(.greedy, vocabSize: f.config.vocabSize)
                let cache = model.makeCache(batch: B)
                let prompt: [Int32] = f.inputIDs.prefix(B).flatMap { $0 }
                var logits = try prompt.withUnsafeBufferPointer { try model.forward(tokens: $0, batch: B, cache: cache, logits: .last) }
                let step = UnsafeMutableBufferPointer<Int32>.allocate(capacity: B)
                defer { step.deallocate() }
                var before: UInt = 0
                for i in 0..<12 {
                    if i == 2 { before = count() }
                    for b in 0..<B { step[b] = sampler.next(logits.baseAddress! + b * f.config.vocabSize) }
                    logits = try model.forward(tokens: UnsafeBufferPointer(step), batch: B, cache: cache, logits: .last)
                }
                let allocations = count() - before
                print("threads \(threads): heap allocations in 10 decode steps (B=\(B)): \(allocations)")
                #expect(allocations == 0)
            }
        }
    }

    @Test("a forward that does not fit is refused, not run")
    func refusesOversizedCalls() throws {
        let f = try TinyLlamaFixture("gqa-tied")
        let model = try f.model(maxBatch: 2, maxTokens: 16, maxContext: 20)
        let cache = model.makeCache(batch: 1)
        #expect(throws: PilotError.self) { try model.forward([Array(repeating: 3, count: 17)], cache: cache) }
        #expect(throws: PilotError.self) { try model.forward([[300]], cache: cache) }
        #expect(throws: PilotError.self) { try model.forward([[3], [4]], cache: cache) }
        _ = try model.forward([Array(repeating: 3, count: 16)], cache: cache)
        #expect(throws: PilotError.self) { try model.forward([Array(repeating: 3, count: 5)], cache: cache) }
        #expect(cache.length == 16)
    }
}
