import Foundation
import PilotCore
import PilotTensor

// Shape letters: B sequences, T context, P visual tokens, C width, F SwiGLU hidden, V vocabulary, H heads, D head width.

/// Per-step buffers of batched greedy decoding (allocated on the first `generate`).
final class DecodeState {
    let x: Tensor, h: Tensor, qkv: Tensor, att: Tensor, gu: Tensor, sig: Tensor, act: Tensor, logits: Tensor, rstd: Tensor, scores: Tensor
    /// x·A scratch for the LoRA path of a frozen base.
    let xa: Tensor
    init(B: Int, C: Int, W: Int, F: Int, V: Int, T: Int, PR: Int) {
        x = Tensor(shape: [B, C]); h = Tensor(shape: [B, C]); qkv = Tensor(shape: [B, W]); att = Tensor(shape: [B, C])
        xa = Tensor(shape: [B, max(1, PR)])
        gu = Tensor(shape: [B, 2 * F]); sig = Tensor(shape: [B, F]); act = Tensor(shape: [B, F])
        logits = Tensor(shape: [B, V]); rstd = Tensor(shape: [B]); scores = Tensor(shape: [T])
    }
}

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
        _ = try prefill(batch)
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
                next = decodeStep(tokens: next, positions: lengths, done: done)
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
    /// `localLoRAMix`.
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
        let st = decodeState(B)
        let last = lm.resid[config.layers].pointer
        for b in 0..<B { (st.x.pointer + b * C).update(from: last + (b * T + Int(lengths[b]) - 1) * C, count: C) }
        return headArgmax(st, B)
    }

    private func headArgmax(_ st: DecodeState, _ B: Int) -> [Int32] {
        let C = config.width, V = config.vocabSize
        RMSNorm.forward(y: st.h.pointer, rstd: st.rstd.pointer, x: st.x.pointer, weight: lm.finalNorm, rows: B, width: C, eps: config.normEps)
        if lm.headTransposed {
            sgemm(transB: true, m: B, n: V, k: C, a: st.h.pointer, lda: C, b: lm.head, ldb: C, c: st.logits.pointer, ldc: V)
        } else {
            Linear.forward(y: st.logits.pointer, x: st.h.pointer, weight: lm.head, bias: nil, rows: B, inFeatures: C, outFeatures: V)
        }
        return (0..<B).map { b in
            let r = st.logits.pointer + b * V
            var best = 0
            for j in 1..<V where r[j] > r[best] { best = j }
            return Int32(best)
        }
    }

    private func decodeState(_ B: Int) -> DecodeState {
        if let s = decode, s.x.shape[0] >= B { return s }
        let s = DecodeState(B: maxBatch, C: config.width, W: lm.W, F: config.ffnHidden, V: config.vocabSize, T: config.contextLength,
                            PR: lm.maxPackedWidth)
        decode = s
        return s
    }

    /// One token per sequence at `positions[b]`, attending to cached rows 0...positions[b].
    func decodeStep(tokens: [Int32], positions: [Int32], done: [Bool]) -> [Int32] {
        let B = tokens.count, T = config.contextLength, C = config.width, F = config.ffnHidden
        let H = config.heads, D = config.headDim, KV = lm.KV, G = H / KV, W = lm.W, KVD = lm.KVD
        let st = decodeState(B)
        let xa = st.xa.pointer
        let x = st.x.pointer
        for b in 0..<B { (x + b * C).update(from: lm.embed + Int(tokens[b]) * C, count: C) }
        let scale = 1 / Float(D).squareRoot()
        for l in lm.layers {
            RMSNorm.forward(y: st.h.pointer, rstd: st.rstd.pointer, x: x, weight: l.attnNorm, rows: B, width: C, eps: config.normEps)
            l.qkv.forward(y: st.qkv.pointer, x: st.h.pointer, xa: xa, rows: B)
            for b in 0..<B {
                let pos = min(Int(positions[b]), T - 1)
                let row = st.qkv.pointer + b * W
                lm.rope.apply(row: row, heads: H, pos: pos)
                lm.rope.apply(row: row + C, heads: KV, pos: pos)
                let cache = l.qkvOut.pointer + b * T * W
                if !done[b] { (cache + pos * W + C).update(from: row + C, count: 2 * KVD) }
                for hh in 0..<H {
                    let q = row + hh * D, s = st.scores.pointer, kvh = hh / G
                    var mx = -Float.infinity
                    for j in 0...pos {
                        let k = cache + j * W + C + kvh * D
                        var d: Float = 0
                        for i in 0..<D { d += q[i] * k[i] }
                        s[j] = d * scale; mx = max(mx, s[j])
                    }
                    var sum: Float = 0
                    for j in 0...pos { s[j] = Foundation.exp(s[j] - mx); sum += s[j] }
                    let o = st.att.pointer + b * C + hh * D
                    for i in 0..<D { o[i] = 0 }
                    for j in 0...pos {
                        let v = cache + j * W + C + KVD + kvh * D, p = s[j] / sum
                        for i in 0..<D { o[i] += p * v[i] }
                    }
                }
            }
            l.o.forward(y: x, x: st.att.pointer, xa: xa, rows: B, accumulate: true)
            RMSNorm.forward(y: st.h.pointer, rstd: st.rstd.pointer, x: x, weight: l.mlpNorm, rows: B, width: C, eps: config.normEps)
            l.gateUp.forward(y: st.gu.pointer, x: st.h.pointer, xa: xa, rows: B)
            SwiGLU.forward(act: st.act.pointer, sigmoid: st.sig.pointer, g: st.gu.pointer, ldg: 2 * F, u: st.gu.pointer + F, ldu: 2 * F, rows: B, width: F)
            l.down.forward(y: x, x: st.act.pointer, xa: xa, rows: B, accumulate: true)
        }
        return headArgmax(st, B)
    }
}
