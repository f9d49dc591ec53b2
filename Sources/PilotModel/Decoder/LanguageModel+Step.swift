import Foundation
import PilotTensor

// Shape letters: B sequences, n new tokens each, R = B·n rows, C width, F SwiGLU hidden, V vocabulary,
// H heads, KV key/value heads (G = H/KV query heads share one), D head width, KVD = KV·D, W = C + 2·KVD.

extension LanguageModel {
    /// The step buffers, made on first use.
    func stepState() -> DecodeState {
        if let s = decodeState { return s }
        let s = DecodeState(rows: maxBatch * maxStepTokens, batch: maxBatch, C: C, W: W, F: F, V: V, T: T, PR: maxPackedWidth)
        decodeState = s
        return s
    }

    /// A cache over the training forward's q|k|v rows (`qkvOut`): after `forward`, position t of
    /// sequence b holds that pass's k|v, so decoding continues from it without a copy. In recompute
    /// mode the layers share `qkvOut`, so it is the copy that `forward(keepKeysValues: true)` made.
    func forwardCache() -> KVCache {
        precondition(trains, "LanguageModel: an inference-only decoder has no forward rows to continue from")
        if recomputesActivations {
            guard let kept = keptKeysValues, keptKeysValuesAreCurrent else { preconditionFailure("LanguageModel: recompute mode keeps the forward's keys only when asked (forward(keepKeysValues: true))") }
            return kept
        }
        return KVCache(viewing: layers.map { $0.qkvOut.pointer + C }, batch: maxBatch, maxLength: T, stride: W, sequenceStride: T * W)
    }

    /// One cached step: `n` new tokens of each of B sequences, token t of sequence b at position
    /// start[b] + t (row b·n + t). Their keys and values go into `cache` (except for sequences with
    /// keep[b] false: finished ones, whose rows are computed and ignored); each row attends to cache
    /// slots 0 ... its position. Leaves the rows' last hidden states (before the final norm) in the step
    /// state's `x`. The same LoRA as the training forward (merged, or unmerged on a frozen base).
    /// Decoding (n = 1) attends in plain loops (`oneRowAttention`, the multimodal model's evaluation);
    /// a prefill chunk (n > 1) with two sgemm per (sequence, head) (`chunkAttention`).
    func step(tokens: UnsafePointer<Int32>, batch B: Int, count n: Int, start: UnsafePointer<Int32>,
              keep: UnsafePointer<Bool>?, cache: KVCache) {
        precondition(B <= maxBatch && n <= maxStepTokens, "LanguageModel.step: \(B) × \(n) tokens exceed \(maxBatch) × \(maxStepTokens)")
        let R = B * n, T = self.T, C = self.C, F = self.F, H = self.H, KV = self.KV, KVD = self.KVD, W = self.W
        let st = stepState()
        let xa = st.xa.pointer, x = st.x.pointer
        embed(out: x, tokens: tokens, count: R)
        let ld = cache.stride
        for (li, l) in layers.enumerated() {
            RMSNorm.forward(y: st.h.pointer, rstd: st.rstd.pointer, x: x, weight: l.attnNorm, rows: R, width: C, eps: cfg.normEps)
            l.qkv.forward(y: st.qkv.pointer, x: st.h.pointer, xa: xa, rows: R)
            // RoPE and the cache write of every row first: a row attends to the earlier rows of its call
            for r in 0..<R {
                let b = r / n, pos = min(Int(start[b]) + r % n, T - 1)
                let row = st.qkv.pointer + r * W
                rope.apply(row: row, heads: H, pos: pos)
                rope.apply(row: row + C, heads: KV, pos: pos)
                if keep?[b] ?? true { (cache.slot(li, b) + pos * ld).update(from: row + C, count: 2 * KVD) }
            }
            if n > 1 {
                chunkAttention(st, layer: li, batch: B, count: n, start: start, cache: cache)
            } else {
                oneRowAttention(st, layer: li, batch: B, start: start, cache: cache)
            }
            l.o.forward(y: x, x: st.att.pointer, xa: xa, rows: R, accumulate: true)
            RMSNorm.forward(y: st.h.pointer, rstd: st.rstd.pointer, x: x, weight: l.mlpNorm, rows: R, width: C, eps: cfg.normEps)
            l.gateUp.forward(y: st.gu.pointer, x: st.h.pointer, xa: xa, rows: R)
            SwiGLU.forward(act: st.act.pointer, sigmoid: st.sig.pointer, g: st.gu.pointer, ldg: 2 * F, u: st.gu.pointer + F, ldu: 2 * F, rows: R, width: F)
            l.down.forward(y: x, x: st.act.pointer, xa: xa, rows: R, accumulate: true)
        }
    }

    /// Attention of one new row per sequence (decoding) over cache slots 0 ... its position, per head
    /// in plain loops: the order the multimodal model's evaluation has always used (its greedy tokens
    /// are in committed results), so they keep their last bits.
    private func oneRowAttention(_ st: DecodeState, layer li: Int, batch B: Int, start: UnsafePointer<Int32>, cache: KVCache) {
        let T = self.T, C = self.C, H = self.H, D = self.D, G = H / KV, KVD = self.KVD, W = self.W
        let scale = 1 / Float(D).squareRoot(), ld = cache.stride
        for b in 0..<B {
            let r = b, pos = min(Int(start[b]), T - 1)
            let row = st.qkv.pointer + r * W, slots = cache.slot(li, b)
            for hh in 0..<H {
                let q = row + hh * D, s = st.scores.pointer, kvh = hh / G
                var mx = -Float.infinity
                for j in 0...pos {
                    let k = slots + j * ld + kvh * D
                    var d: Float = 0
                    for i in 0..<D { d += q[i] * k[i] }
                    s[j] = d * scale; mx = max(mx, s[j])
                }
                var sum: Float = 0
                for j in 0...pos { s[j] = Foundation.exp(s[j] - mx); sum += s[j] }
                let o = st.att.pointer + r * C + hh * D
                for i in 0..<D { o[i] = 0 }
                for j in 0...pos {
                    let v = slots + j * ld + KVD + kvh * D, p = s[j] / sum
                    for i in 0..<D { o[i] += p * v[i] }
                }
            }
        }
    }

    /// Attention of n > 1 new rows per sequence (a text prefill chunk) over the cache, as transformers'
    /// eager attention: per (sequence, head) one sgemm for the scores, a causal softmax per row, one
    /// sgemm for the output.
    private func chunkAttention(_ st: DecodeState, layer li: Int, batch B: Int, count n: Int, start: UnsafePointer<Int32>,
                                cache: KVCache) {
        let C = self.C, H = self.H, D = self.D, G = H / KV, KVD = self.KVD, W = self.W
        let scale = 1 / Float(D).squareRoot(), ld = cache.stride
        if st.chunkScores == nil { st.chunkScores = Tensor(shape: [maxStepTokens, T]) }
        let s = st.chunkScores!.pointer
        for b in 0..<B {
            let pos0 = Int(start[b]), keys = pos0 + n, slots = cache.slot(li, b)
            for h in 0..<H {
                let kvh = h / G, q = st.qkv.pointer + b * n * W + h * D
                sgemm(transB: true, m: n, n: keys, k: D, alpha: scale, a: q, lda: W, b: slots + kvh * D, ldb: ld, c: s, ldc: keys)
                for t in 0..<n { softmaxInPlace(s + t * keys, valid: pos0 + t + 1, count: keys) }
                sgemm(m: n, n: D, k: keys, a: s, lda: keys, b: slots + KVD + kvh * D, ldb: ld, c: st.att.pointer + b * n * C + h * D, ldc: C)
            }
        }
    }

    /// out[rows, V] = lm_head(final_norm(x)) for the first `rows` rows of the step state's `x`.
    func stepHead(rows: Int, into out: UnsafeMutablePointer<Float>) {
        let st = stepState()
        RMSNorm.forward(y: st.h.pointer, rstd: st.rstd.pointer, x: st.x.pointer, weight: finalNorm, rows: rows, width: C, eps: cfg.normEps)
        if let frozenHead, !trains && rows == 1, let w = frozenHead.float32 {
            // text generation's decode step: a matrix-vector product (see gemvRow)
            gemvRow(y: out, w: w, x: st.h.pointer, outFeatures: V, inFeatures: C, accumulate: false)
        } else if let frozenHead {
            products.forward(y: out, x: st.h.pointer, rows: rows, weight: frozenHead)
        } else {
            Linear.forward(y: out, x: st.h.pointer, weight: head!, bias: nil, rows: rows, inFeatures: C, outFeatures: V)
        }
    }
}
