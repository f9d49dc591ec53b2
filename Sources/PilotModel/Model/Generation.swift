import Foundation
import PilotCore
import PilotTensor

// Shape letters: B sequences, T context, P visual tokens, C width, F SwiGLU hidden, V vocabulary, H heads, D head width.

extension MLLM {
    /// Greedy decoding for evaluation, batched, with a KV cache: the prompt (visual tokens + `prompts[b]`,
    /// e.g. [BOS] instruction [SEP]) runs once through the full forward pass, whose post-RoPE k and v rows
    /// are the cache; every new token then costs one row per sequence. LoRA runs merged (W + s·A·B).
    /// Stops a sequence at `eosToken` (included in its output) or when the context is full.
    /// - Parameter useKVCache: false recomputes the whole prefix for every token (a slow reference path for tests).
    public func generate(visual: Batch.Visual, prompts: [[Int32]], maxNewTokens: Int, eosToken: Int32? = nil,
                         useKVCache: Bool = true) throws -> [[Int32]] {
        let B = prompts.count, P = config.visualTokens, T = config.contextLength, L = T - P
        var (batch, lengths) = try promptBatch(visual: visual, prompts: prompts, caller: "generate")
        var out = [[Int32]](repeating: [], count: B)
        var done = [Bool](repeating: false, count: B)
        _ = try prefill(batch, keepKeysValues: useKVCache)
        // the prefill's q|k|v rows are the cache: decoding continues from them
        let cache = useKVCache ? lm.forwardCache() : nil
        var next = lastPositionArgmax(batch: B, lengths: lengths)
        for _ in 0..<maxNewTokens {
            for b in 0..<B where !done[b] {
                // a generated token must fit in the context (prompt + output ≤ T positions)
                if Int(lengths[b]) >= T { done[b] = true; continue }
                out[b].append(next[b])
                if next[b] == eosToken || Int(lengths[b]) + 1 >= T { done[b] = true }
            }
            if done.allSatisfy({ $0 }) { break }
            if useKVCache {
                next = decodeStep(tokens: next, positions: lengths, done: done, cache: cache!)
                for b in 0..<B where !done[b] { lengths[b] += 1 }
            } else {
                for b in 0..<B where !done[b] {
                    batch.tokens[b * L + Int(lengths[b]) - P] = next[b]
                    lengths[b] += 1
                }
                batch.lengths = lengths
                _ = try prefill(batch)
                next = lastPositionArgmax(batch: B, lengths: lengths)
            }
        }
        return out
    }

    /// The last layer's hidden state (the residual stream before the final norm) at each prompt's last
    /// token: one [C] vector per prompt, for FedDPA-T's instance-wise weighting. Uses the current
    /// `localLoRAWeight`.
    public func promptStates(visual: Batch.Visual, prompts: [[Int32]]) throws -> [[Float]] {
        let B = prompts.count, T = config.contextLength, C = config.width
        let (batch, lengths) = try promptBatch(visual: visual, prompts: prompts, caller: "promptStates")
        _ = try prefill(batch)
        let last = lm.resid[config.layers].pointer
        return (0..<B).map { b in
            let row = last + (b * T + Int(lengths[b]) - 1) * C
            return Array(UnsafeBufferPointer(start: row, count: C))
        }
    }

    /// A validated batch of prompts with no targets (text ids left-aligned; the visual tokens sit after the first `visualOffset`)
    /// and its lengths, P + prompt length each.
    private func promptBatch(visual: Batch.Visual, prompts: [[Int32]], caller: String) throws -> (Batch, [Int32]) {
        let B = prompts.count, P = config.visualTokens, T = config.contextLength, L = T - P
        guard B >= 1, B <= maxBatch else { throw PilotError.invalidArgument("\(caller): \(B) prompts; this model takes 1...\(maxBatch)") }
        let o = config.visualOffset
        guard prompts.allSatisfy({ $0.count > o && $0.count <= L }) else {
            throw PilotError.invalidArgument("\(caller): every prompt needs \(o + 1)...\(L) tokens (the first \(o) come before the visual tokens)")
        }
        var tokens = [Int32](repeating: 0, count: B * L)
        var lengths = [Int32](repeating: 0, count: B)
        for (b, p) in prompts.enumerated() {
            for (j, t) in p.enumerated() { tokens[b * L + j] = t }
            lengths[b] = Int32(P + p.count)
        }
        let batch = Batch(size: B, visual: visual, tokens: tokens, targets: [Int32](repeating: -1, count: B * T), lengths: lengths)
        try batch.validate(config, maxBatch: maxBatch)
        return (batch, lengths)
    }

    /// Argmax of the logits at position lengths[b] − 1 of each sequence (after `prefill`).
    func lastPositionArgmax(batch B: Int, lengths: [Int32]) -> [Int32] {
        let T = config.contextLength, C = config.width
        let st = lm.stepState()
        let last = lm.resid[config.layers].pointer
        for b in 0..<B { (st.x.pointer + b * C).update(from: last + (b * T + Int(lengths[b]) - 1) * C, count: C) }
        return headArgmax(B)
    }

    /// Greedy token of each of the first B rows of the step state (the lowest id on ties).
    private func headArgmax(_ B: Int) -> [Int32] {
        let V = config.vocabSize, logits = lm.stepState().logits.pointer
        lm.stepHead(rows: B, into: logits)
        return (0..<B).map { b in
            let r = logits + b * V
            var best = 0
            for j in 1..<V where r[j] > r[best] { best = j }
            return Int32(best)
        }
    }

    /// One token per sequence at `positions[b]`, attending to cached rows 0...positions[b]; finished
    /// sequences (`done`) are computed but write nothing to the cache.
    func decodeStep(tokens: [Int32], positions: [Int32], done: [Bool], cache: KVCache) -> [Int32] {
        let keep = done.map { !$0 }
        tokens.withUnsafeBufferPointer { t in
            positions.withUnsafeBufferPointer { p in
                keep.withUnsafeBufferPointer { k in
                    lm.step(tokens: t.baseAddress!, batch: tokens.count, count: 1, start: p.baseAddress!, keep: k.baseAddress!, cache: cache)
                }
            }
        }
        return headArgmax(tokens.count)
    }
}
