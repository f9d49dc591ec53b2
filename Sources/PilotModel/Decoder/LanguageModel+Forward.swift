import PilotTensor

// Shape letters: B sequences, T positions, N = B·T rows, C width, H heads, KV key/value heads,
// KVD = KV·D, W = C + 2·KVD (one q|k|v row), F SwiGLU hidden.

extension LanguageModel {
    /// Runs every block on resid[0] (filled by the caller) for `batch` sequences. In recompute mode,
    /// `keepKeysValues` also copies each layer's keys and values for `forwardCache` (decoding).
    func forward(batch: Int, lengths: UnsafePointer<Int32>?, keepKeysValues: Bool = false) {
        precondition(trains, "LanguageModel: an inference-only decoder runs `step`, not the training forward")
        let attention = Attention(batch: batch, seqLen: T, heads: H, headDim: D, kvHeads: KV, causal: true)
        let scratch = attentionScratch()
        heldLayer = nil
        keptKeysValuesAreCurrent = recomputesActivations && keepKeysValues
        for li in layers.indices {
            layerForward(li, batch: batch, attention: attention, scratch: scratch, lengths: lengths)
            if recomputesActivations && keepKeysValues { keepKeysValuesOfLayer(li, batch: batch) }
        }
        if recomputesActivations { heldLayer = layers.count - 1 }
    }

    /// Layer `li` on resid[li]: its activations, and (unless `output` is false: a recompute, whose
    /// output resid[li + 1] is already there) resid[li + 1]. With `output` false the down projection
    /// computes only what its backward reads (x·A), the same sgemm as the full forward.
    func layerForward(_ li: Int, batch: Int, attention: Attention, scratch: UnsafeMutablePointer<Float>,
                      lengths: UnsafePointer<Int32>?, output: Bool = true) {
        let N = batch * T
        let l = layers[li], x = resid[li], out = resid[li + 1]
        RMSNorm.forward(y: l.h1.pointer, rstd: l.rstd1.pointer, x: x.pointer, weight: l.attnNorm, rows: N, width: C, eps: cfg.normEps)
        l.qkv.forward(y: l.qkvOut.pointer, x: l.h1.pointer, xa: l.xaQKV.pointer, rows: N)
        let qkv = l.qkvOut.pointer, rope = self.rope, C = self.C, H = self.H, KV = self.KV, T = self.T, W = self.W
        Parallel.rows(N, costPerItem: 2 * C, context: (qkv, rope, C, H, KV, T, W)) { k, lo, hi in
            let (qkv, rope, C, H, KV, T, W) = k
            for n in lo..<hi {
                rope.apply(row: qkv + n * W, heads: H, pos: n % T)
                rope.apply(row: qkv + n * W + C, heads: KV, pos: n % T)
            }
        }
        attention.forward(o: l.att.pointer, ldo: C, probs: l.probs?.pointer, q: qkv, k: qkv + C, v: qkv + C + KVD,
                          ldqkv: W, lengths: lengths, scratch: scratch)
        l.xmid.pointer.update(from: x.pointer, count: N * C)
        l.o.forward(y: l.xmid.pointer, x: l.att.pointer, xa: l.xaO.pointer, rows: N, accumulate: true)
        RMSNorm.forward(y: l.h2.pointer, rstd: l.rstd2.pointer, x: l.xmid.pointer, weight: l.mlpNorm, rows: N, width: C, eps: cfg.normEps)
        l.gateUp.forward(y: l.gu.pointer, x: l.h2.pointer, xa: l.xaGU.pointer, rows: N)
        SwiGLU.forward(act: act.pointer, sigmoid: sig.pointer, g: l.gu.pointer, ldg: 2 * F,
                       u: l.gu.pointer + F, ldu: 2 * F, rows: N, width: F)
        guard output else { l.down.forwardLoRAInput(x: act.pointer, xa: l.xaDown.pointer, rows: N); return }
        out.pointer.update(from: l.xmid.pointer, count: N * C)
        l.down.forward(y: out.pointer, x: act.pointer, xa: l.xaDown.pointer, rows: N, accumulate: true)
    }
}
