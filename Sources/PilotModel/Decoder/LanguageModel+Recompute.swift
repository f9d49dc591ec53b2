import PilotTensor

// Shape letters: L layers, B sequences, T positions, N = B·T rows, C width, KVD = KV·D,
// W = C + 2·KVD (one q|k|v row).

/// Activation recomputation (`train.recompute_activations`, transformers' gradient checkpointing).
/// Without it every layer keeps its own activations (normed inputs, q|k|v, attention output, the
/// residual after attention, gate|up, the x·A of every LoRA, and the built-in LM's attention
/// probabilities) from the forward pass to the backward pass. With it the layers share one set:
/// the forward pass keeps only each layer's input (`resid`, L + 1 buffers of [N, C]), and `backward`
/// reruns layer l's forward (`layerForward(output: false)`) into the shared set just before layer l's
/// backward. The rerun is the same kernels on the same input in the same order on the same threads,
/// so every activation, and so every gradient, is the same bits as without it; it costs one more
/// forward pass of every layer but the last (whose activations are still held) less the down
/// projection's product (its output, resid[l + 1], already exists).
extension LanguageModel {
    /// Bytes of the activations kept from the forward pass to the backward pass: the layer inputs
    /// (`resid`) and every layer's activation buffers, each buffer counted once (in recompute mode
    /// the layers share theirs). Scratch used by one layer at a time (σ(gate), silu(gate)⊙up, the
    /// backward's gradients, the head's rows) is not counted: both modes have the same.
    public var storedActivationBytes: Int {
        var seen = Set<ObjectIdentifier>(), floats = 0
        func count(_ t: Tensor?) {
            guard let t, seen.insert(ObjectIdentifier(t.storage)).inserted else { return }
            floats += t.storage.count
        }
        for r in resid { count(r) }
        for l in layers {
            for t in [l.h1, l.rstd1, l.xaQKV, l.qkvOut, l.att, l.xaO, l.xmid, l.h2, l.rstd2, l.xaGU, l.gu, l.xaDown] { count(t) }
            count(l.probs)
        }
        return floats * MemoryLayout<Float>.size
    }

    /// Recompute mode: copies layer `li`'s post-RoPE k|v rows (in `qkvOut` after its forward) into
    /// `keptKeysValues`, position t of sequence b to the same slot a view of `qkvOut` would show.
    func keepKeysValuesOfLayer(_ li: Int, batch: Int) {
        if keptKeysValues == nil { keptKeysValues = KVCache(layers: layers.count, batch: maxBatch, maxLength: T, kvWidth: KVD) }
        let cache = keptKeysValues!, rows = layers[li].qkvOut.pointer
        for b in 0..<batch {
            let slots = cache.slot(li, b)
            for t in 0..<T { (slots + t * cache.stride).update(from: rows + (b * T + t) * W + C, count: 2 * KVD) }
        }
    }
}
