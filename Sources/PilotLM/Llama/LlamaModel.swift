import Foundation
import PilotCore
import PilotTensor

/// The Llama-family decoder (transformers' `LlamaForCausalLM` / `Qwen2ForCausalLM`) as an inference engine:
///
///   x = embed_tokens[ids]                                                        [B·T, C]
///   per layer:  h = input_layernorm(x);  q,k,v = q_proj(h), k_proj(h), v_proj(h) (+ bias)
///               q,k = RoPE(q,k; position);  K,V cache ← k,v
///               x += o_proj(softmax(q·Kᵀ/√D, causal) · V)       (query head h reads KV head h / groups)
///               h = post_attention_layernorm(x);  x += down_proj(silu(gate_proj(h)) · up_proj(h))
///   logits = lm_head(norm(x))                                                    [B·T, V] or [B, V]
///
/// Every projection is one `sgemm` over all B·T rows; norms, RoPE, attention and the activation run over
/// rows or (sequence, head) pairs on `Parallel`'s threads (whatever `Parallel.configure(threads:)` set).
/// Activations are allocated once, for `maxBatch` × `maxTokens` rows, so a step allocates nothing.
/// Shape letters: see LlamaWeights.swift.
public final class LlamaModel: @unchecked Sendable {
    public let config: LlamaConfig
    public let weights: LlamaWeights
    /// Largest B and T of one `forward` call.
    public let maxBatch: Int, maxTokens: Int
    /// Positions the RoPE table covers: the longest KV cache this model can drive.
    public let maxContext: Int

    public enum Logits: Sendable { case all, last }

    // activations, R = maxBatch·maxTokens rows
    let x: UnsafeMutablePointer<Float>        // [R, C] residual stream
    let xn: UnsafeMutablePointer<Float>       // [R, C] normed input of a sublayer; also a sublayer's output
    let q: UnsafeMutablePointer<Float>        // [R, H·D]
    let k: UnsafeMutablePointer<Float>        // [R, KV·D]
    let v: UnsafeMutablePointer<Float>        // [R, KV·D]
    let att: UnsafeMutablePointer<Float>      // [R, H·D] attention output before o_proj
    let gate: UnsafeMutablePointer<Float>     // [R, F]
    let up: UnsafeMutablePointer<Float>       // [R, F]
    let scores: UnsafeMutablePointer<Float>   // [maxBatch·H, maxTokens, maxContext] attention weights per (sequence, head)
    let logitBuffer: UnsafeMutablePointer<Float>  // [R, V]
    let ropeCos: UnsafeMutablePointer<Float>  // [maxContext, D/2]
    let ropeSin: UnsafeMutablePointer<Float>  // [maxContext, D/2]
    private var allocations: [UnsafeMutablePointer<Float>] = []

    public init(config: LlamaConfig, weights: LlamaWeights, maxBatch: Int, maxTokens: Int, maxContext: Int) throws {
        guard maxBatch > 0, maxTokens > 0, maxContext >= maxTokens else {
            throw PilotError.invalidArgument("LlamaModel: need maxBatch > 0 and 0 < maxTokens ≤ maxContext (got \(maxBatch), \(maxTokens), \(maxContext))")
        }
        self.config = config; self.weights = weights
        self.maxBatch = maxBatch; self.maxTokens = maxTokens; self.maxContext = maxContext
        let R = maxBatch * maxTokens, C = config.hiddenSize, D = config.headDim
        let HD = config.numAttentionHeads * D, KVD = config.numKeyValueHeads * D, F = config.intermediateSize
        var allocs: [UnsafeMutablePointer<Float>] = []
        // Not zero-filled: every activation is written before it is read, and untouched pages (the logit
        // rows of a `.last` call, score rows of short calls) then never count in the resident set.
        func buffer(_ n: Int) -> UnsafeMutablePointer<Float> {
            let p = UnsafeMutablePointer<Float>.allocate(capacity: max(1, n))
            allocs.append(p); return p
        }
        x = buffer(R * C); xn = buffer(R * C); q = buffer(R * HD); k = buffer(R * KVD); v = buffer(R * KVD)
        att = buffer(R * HD); gate = buffer(R * F); up = buffer(R * F)
        scores = buffer(maxBatch * config.numAttentionHeads * maxTokens * maxContext)
        logitBuffer = buffer(R * config.vocabSize)
        ropeCos = buffer(maxContext * D / 2); ropeSin = buffer(maxContext * D / 2)
        allocations = allocs
        // As transformers' default RoPE, all in Float32: inv_freq = 1 / theta^(2i/D), angle = pos · inv_freq.
        let theta = Float(config.ropeTheta)
        for i in 0..<(D / 2) {
            let invFreq = 1 / powf(theta, Float(2 * i) / Float(D))
            for p in 0..<maxContext {
                let angle = Float(p) * invFreq
                ropeCos[p * D / 2 + i] = cosf(angle)
                ropeSin[p * D / 2 + i] = sinf(angle)
            }
        }
    }

    deinit { for p in allocations { p.deallocate() } }

    /// A cache this model can fill: `batch` sequences of up to `maxLength` (≤ `maxContext`) positions.
    public func makeCache(batch: Int, maxLength: Int? = nil) -> KVCache {
        KVCache(config: config, batch: batch, maxLength: min(maxLength ?? maxContext, maxContext))
    }

    /// Runs B sequences of T tokens each at positions cache.length ..< cache.length+T, appending their keys
    /// and values to `cache`. Returns logits [B, T, V] (`.all`) or [B, V] of each sequence's last token
    /// (`.last`); the buffer is the model's own and is overwritten by the next call.
    public func forward(tokens: UnsafeBufferPointer<Int32>, batch B: Int, cache: KVCache,
                        logits mode: Logits = .all) throws -> UnsafeBufferPointer<Float> {
        guard B > 0, tokens.count % B == 0, tokens.count > 0 else {
            throw PilotError.invalidArgument("LlamaModel.forward: \(tokens.count) tokens do not split into \(B) sequences")
        }
        let T = tokens.count / B
        guard B <= maxBatch, T <= maxTokens else {
            throw PilotError.invalidArgument("LlamaModel.forward: batch \(B) × \(T) tokens exceeds the model's \(maxBatch) × \(maxTokens); make the model with a larger maxBatch/maxTokens")
        }
        guard cache.batch == B, cache.layers == config.numHiddenLayers, cache.kvHeads == config.numKeyValueHeads,
              cache.headDim == config.headDim else {
            throw PilotError.invalidArgument("LlamaModel.forward: the KV cache is for batch \(cache.batch), \(cache.layers) layers; this call has batch \(B)")
        }
        let pos0 = cache.length
        guard pos0 + T <= cache.maxLength, pos0 + T <= maxContext else {
            throw PilotError.invalidArgument("LlamaModel.forward: context full: \(pos0) cached + \(T) new positions exceed \(min(cache.maxLength, maxContext))")
        }
        let V = config.vocabSize
        for t in tokens where t < 0 || Int(t) >= V {
            throw PilotError.invalidArgument("LlamaModel.forward: token id \(t) is outside the vocabulary 0..<\(V)")
        }
        run(tokens: tokens.baseAddress!, B: B, T: T, pos0: pos0, cache: cache)
        cache.length = pos0 + T
        let C = config.hiddenSize, R = B * T
        switch mode {
        case .all:
            sgemm(transB: true, m: R, n: V, k: C, a: xn, b: weights.lmHead, c: logitBuffer)
            return UnsafeBufferPointer(start: logitBuffer, count: R * V)
        case .last:
            for b in 0..<B where b * T + T - 1 != b { (xn + b * C).update(from: xn + (b * T + T - 1) * C, count: C) }
            sgemm(transB: true, m: B, n: V, k: C, a: xn, b: weights.lmHead, c: logitBuffer)
            return UnsafeBufferPointer(start: logitBuffer, count: B * V)
        }
    }

    /// Convenience for tests and tools: `tokens` is B rows of T ids; returns a copy of the logits.
    public func forward(_ tokens: [[Int32]], cache: KVCache, logits mode: Logits = .all) throws -> [Float] {
        let flat = tokens.flatMap { $0 }
        guard tokens.allSatisfy({ $0.count == tokens.first?.count }) else {
            throw PilotError.invalidArgument("LlamaModel.forward: sequences of different lengths")
        }
        return try flat.withUnsafeBufferPointer { Array(try forward(tokens: $0, batch: tokens.count, cache: cache, logits: mode)) }
    }

    /// Embeddings → blocks → final norm; leaves the normed final hidden states in `xn`.
    private func run(tokens: UnsafePointer<Int32>, B: Int, T: Int, pos0: Int, cache: KVCache) {
        let c = config, C = c.hiddenSize, R = B * T, D = c.headDim, H = c.numAttentionHeads
        let KV = c.numKeyValueHeads, HD = H * D, KVD = KV * D, F = c.intermediateSize, eps = c.rmsNormEps
        for r in 0..<R { (x + r * C).update(from: weights.embedTokens + Int(tokens[r]) * C, count: C) }
        for l in 0..<c.numHiddenLayers {
            let w = weights.layers[l]
            // attention
            rmsNorm(out: xn, inp: x, weight: w.inputLayernorm, rows: R, C: C, eps: eps)
            sgemm(transB: true, m: R, n: HD, k: C, a: xn, b: w.qProj, c: q)
            sgemm(transB: true, m: R, n: KVD, k: C, a: xn, b: w.kProj, c: k)
            sgemm(transB: true, m: R, n: KVD, k: C, a: xn, b: w.vProj, c: v)
            if let qb = w.qBias, let kb = w.kBias, let vb = w.vBias {
                addBias(q, qb, rows: R, n: HD); addBias(k, kb, rows: R, n: KVD); addBias(v, vb, rows: R, n: KVD)
            }
            applyRoPE(q, heads: H, rows: R, T: T, pos0: pos0)
            applyRoPE(k, heads: KV, rows: R, T: T, pos0: pos0)
            storeKV(cache: cache, layer: l, B: B, T: T, pos0: pos0)
            attention(cache: cache, layer: l, B: B, T: T, pos0: pos0)
            sgemm(transB: true, m: R, n: C, k: HD, a: att, b: w.oProj, c: xn)
            if let ob = w.oBias { addBias(xn, ob, rows: R, n: C) }
            addInPlace(x, xn, count: R * C)
            // MLP
            rmsNorm(out: xn, inp: x, weight: w.postAttentionLayernorm, rows: R, C: C, eps: eps)
            sgemm(transB: true, m: R, n: F, k: C, a: xn, b: w.gateProj, c: gate)
            sgemm(transB: true, m: R, n: F, k: C, a: xn, b: w.upProj, c: up)
            swiGLU(gate, up, count: R * F)
            sgemm(transB: true, m: R, n: C, k: F, a: gate, b: w.downProj, c: xn)
            addInPlace(x, xn, count: R * C)
        }
        rmsNorm(out: xn, inp: x, weight: weights.norm, rows: R, C: C, eps: eps)
    }

    /// out = x · rsqrt(mean(x²) + eps) · weight per row, in Float as transformers' `LlamaRMSNorm`.
    private func rmsNorm(out: UnsafeMutablePointer<Float>, inp: UnsafeMutablePointer<Float>,
                         weight: UnsafeMutablePointer<Float>, rows: Int, C: Int, eps: Float) {
        Parallel.rows(rows, costPerItem: 2 * C, context: (out, inp, weight, C, eps)) { ctx, lo, hi in
            let (out, inp, w, C, eps) = ctx
            for r in lo..<hi {
                let xr = inp + r * C, yr = out + r * C
                var ss: Float = 0
                for i in 0..<C { ss += xr[i] * xr[i] }
                let rstd = 1 / (ss / Float(C) + eps).squareRoot()
                for i in 0..<C { yr[i] = w[i] * (xr[i] * rstd) }
            }
        }
    }

    private func addBias(_ y: UnsafeMutablePointer<Float>, _ bias: UnsafeMutablePointer<Float>, rows: Int, n: Int) {
        for r in 0..<rows { let yr = y + r * n; for j in 0..<n { yr[j] += bias[j] } }
    }

    private func addInPlace(_ y: UnsafeMutablePointer<Float>, _ d: UnsafeMutablePointer<Float>, count: Int) {
        Parallel.rows(count, context: (y, d)) { ctx, lo, hi in
            let (y, d) = ctx
            for i in lo..<hi { y[i] += d[i] }
        }
    }

    /// gate ← silu(gate) · up, silu(z) = z · sigmoid(z).
    private func swiGLU(_ g: UnsafeMutablePointer<Float>, _ u: UnsafeMutablePointer<Float>, count: Int) {
        Parallel.rows(count, costPerItem: 8, context: (g, u)) { ctx, lo, hi in
            let (g, u) = ctx
            for i in lo..<hi { let z = g[i]; g[i] = (z * (1 / (1 + expf(-z)))) * u[i] }
        }
    }

    /// transformers' `rotate_half` RoPE on rows of `heads` × D: pairs (i, i + D/2) rotate by position · inv_freq[i].
    private func applyRoPE(_ y: UnsafeMutablePointer<Float>, heads: Int, rows: Int, T: Int, pos0: Int) {
        let D = config.headDim
        Parallel.rows(rows, costPerItem: heads * D * 3, context: (y, heads, D, T, pos0, ropeCos, ropeSin)) { ctx, lo, hi in
            let (y, heads, D, T, pos0, cosT, sinT) = ctx
            let half = D / 2
            for r in lo..<hi {
                let p = pos0 + r % T
                let cs = cosT + p * half, sn = sinT + p * half
                for h in 0..<heads {
                    let yh = y + (r * heads + h) * D
                    for i in 0..<half {
                        let a = yh[i], b = yh[i + half]
                        yh[i] = a * cs[i] + (-b) * sn[i]
                        yh[i + half] = b * cs[i] + a * sn[i]
                    }
                }
            }
        }
    }

    /// Copies this call's k, v rows into cache slots pos0 ..< pos0+T of `layer`.
    private func storeKV(cache: KVCache, layer l: Int, B: Int, T: Int, pos0: Int) {
        let D = config.headDim, KV = config.numKeyValueHeads
        for b in 0..<B {
            for g in 0..<KV {
                let base = cache.offset(layer: l, sequence: b, head: g) + pos0 * D
                for t in 0..<T {
                    let src = ((b * T + t) * KV + g) * D
                    (cache.keys + base + t * D).update(from: k + src, count: D)
                    (cache.values + base + t * D).update(from: v + src, count: D)
                }
            }
        }
    }

    /// Causal attention of this call's queries over the cache: query (b, t, h) at position pos0+t attends
    /// to slots 0 ... pos0+t of KV head h / num_key_value_groups (transformers' `repeat_kv`, without the copy).
    /// Per (sequence, head): scores[T, n] = q·Kᵀ/√D over the n = pos0+T filled slots (one sgemm), a softmax
    /// in Float over each row's causal prefix with the rest set to 0, then out[T, D] = scores · V (one sgemm).
    private func attention(cache: KVCache, layer l: Int, B: Int, T: Int, pos0: Int) {
        let c = config, H = c.numAttentionHeads, D = c.headDim, groups = c.numKeyValueGroups
        let scale = 1 / Float(D).squareRoot()
        let slab = cache.maxLength * D   // one (sequence, KV head) [S, D] block
        let layerBase = cache.offset(layer: l, sequence: 0, head: 0)
        let ctx = (q, att, cache.keys + layerBase, cache.values + layerBase, scores, H, D, groups, T, pos0,
                   slab, c.numKeyValueHeads, maxTokens * maxContext, scale)
        Parallel.rows(B * H, costPerItem: T * (pos0 + T) * D * 4, context: ctx) { ctx, lo, hi in
            let (q, att, keys, values, scores, H, D, groups, T, pos0, slab, KV, block, scale) = ctx
            let n = pos0 + T
            for bh in lo..<hi {
                let b = bh / H, h = bh % H, g = h / groups
                let kh = keys + (b * KV + g) * slab, vh = values + (b * KV + g) * slab
                let s = scores + bh * block   // [T, n]
                let qh = q + (b * T * H + h) * D, out = att + (b * T * H + h) * D   // rows of stride H·D
                sgemm(transB: true, m: T, n: n, k: D, alpha: scale, a: qh, lda: H * D, b: kh, ldb: D, c: s, ldc: n)
                for t in 0..<T {
                    let row = s + t * n, valid = pos0 + t + 1
                    var m = -Float.infinity
                    for j in 0..<valid where row[j] > m { m = row[j] }
                    var sum: Float = 0
                    for j in 0..<valid { let e = expf(row[j] - m); row[j] = e; sum += e }
                    let inv = 1 / sum
                    for j in 0..<valid { row[j] *= inv }
                    for j in valid..<n { row[j] = 0 }
                }
                sgemm(m: T, n: D, k: n, a: s, lda: n, b: vh, ldb: D, c: out, ldc: H * D)
            }
        }
    }
}
