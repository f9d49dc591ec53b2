import PilotTensor

// Shape letters: B images, N = B·P rows, P patches (visual tokens) per image, Dv width,
// Hm MLP hidden, K = channels·patch² patch vector.

/// The tiny ViT: patch embedding + learned positions, pre-LayerNorm blocks with bidirectional
/// attention and a tanh-GELU MLP, final LayerNorm. Output Hv [B·P, Dv].
/// Trained only during pretraining; frozen (forward only) afterwards.
final class VisionEncoder {
    let cfg: ModelConfig
    let P: Int, Dv: Int, K: Int, Hm: Int, heads: Int
    let trains: Bool

    struct Block {
        let p: String
        let ln1: Tensor, mean1: Tensor, rstd1: Tensor      // [N,Dv] [N] [N]
        let qkv: Tensor                                    // [N,3Dv]
        let probs: Tensor                                  // [B,heads,P,P]
        let att: Tensor, xmid: Tensor                      // [N,Dv]
        let ln2: Tensor, mean2: Tensor, rstd2: Tensor
        let pre: Tensor, act: Tensor                       // [N,Hm]
        /// This block's parameters and gradients by suffix ("norm1/weight", "attn/q/bias", …), resolved
        /// once so that a step builds no name strings (short literal keys hash without allocating).
        var w: [String: UnsafeMutablePointer<Float>] = [:]
        var g: [String: UnsafeMutablePointer<Float>?] = [:]
    }

    static let blockSuffixes = ["norm1/weight", "norm1/bias", "attn/q/weight", "attn/q/bias", "attn/k/weight", "attn/k/bias",
                                "attn/v/weight", "attn/v/bias", "attn/o/weight", "attn/o/bias", "norm2/weight", "norm2/bias",
                                "mlp/fc1/weight", "mlp/fc1/bias", "mlp/fc2/weight", "mlp/fc2/bias"]
    static let qkvWeights = ["attn/q/weight", "attn/k/weight", "attn/v/weight"]
    static let qkvBiases = ["attn/q/bias", "attn/k/bias", "attn/v/bias"]
    let store: ParameterStore
    var blocks: [Block] = []
    let patches: Tensor           // [N,K]
    var resid: [Tensor] = []      // [N,Dv] × (layers+1)
    let hv: Tensor, meanF: Tensor, rstdF: Tensor
    // backward scratch
    let dres: Tensor, dln: Tensor, dqkv: Tensor, datt: Tensor, dpre: Tensor, dhv: Tensor, scratch: Tensor

    static func parameterSpecs(_ c: ModelConfig) -> [ParameterSpec] {
        let Dv = c.visionWidth, Hm = c.visionMLPHidden
        var s = [ParameterSpec("vision/patch_embed/weight", [c.patchDim, Dv], group: "vision", init: .normal(std: 1 / Float(c.patchDim).squareRoot())),
                 ParameterSpec("vision/patch_embed/bias", [Dv], group: "vision", init: .zeros),
                 ParameterSpec("vision/pos_embed", [c.visualTokens, Dv], group: "vision", init: .normal(std: 0.02))]
        for l in 0..<c.visionLayers {
            let p = "vision/blocks/\(l)/"
            s.append(ParameterSpec(p + "norm1/weight", [Dv], group: "vision", init: .ones))
            s.append(ParameterSpec(p + "norm1/bias", [Dv], group: "vision", init: .zeros))
            for n in ["q", "k", "v", "o"] {
                s.append(ParameterSpec(p + "attn/\(n)/weight", [Dv, Dv], group: "vision", init: .normal(std: 1 / Float(Dv).squareRoot())))
                s.append(ParameterSpec(p + "attn/\(n)/bias", [Dv], group: "vision", init: .zeros))
            }
            s.append(ParameterSpec(p + "norm2/weight", [Dv], group: "vision", init: .ones))
            s.append(ParameterSpec(p + "norm2/bias", [Dv], group: "vision", init: .zeros))
            s.append(ParameterSpec(p + "mlp/fc1/weight", [Dv, Hm], group: "vision", init: .normal(std: 1 / Float(Dv).squareRoot())))
            s.append(ParameterSpec(p + "mlp/fc1/bias", [Hm], group: "vision", init: .zeros))
            s.append(ParameterSpec(p + "mlp/fc2/weight", [Hm, Dv], group: "vision", init: .normal(std: 1 / Float(Hm).squareRoot())))
            s.append(ParameterSpec(p + "mlp/fc2/bias", [Dv], group: "vision", init: .zeros))
        }
        s.append(ParameterSpec("vision/final_norm/weight", [Dv], group: "vision", init: .ones))
        s.append(ParameterSpec("vision/final_norm/bias", [Dv], group: "vision", init: .zeros))
        return s
    }

    init(cfg: ModelConfig, store: ParameterStore, maxBatch: Int) {
        self.cfg = cfg; self.store = store
        P = cfg.visualTokens; Dv = cfg.visionWidth; K = cfg.patchDim; Hm = cfg.visionMLPHidden; heads = cfg.visionHeads
        trains = (try? store.entry("vision/pos_embed").trainable) ?? false
        let N = maxBatch * P
        for l in 0..<cfg.visionLayers {
            blocks.append(Block(p: "vision/blocks/\(l)/", ln1: Tensor(shape: [N, Dv]), mean1: Tensor(shape: [N]), rstd1: Tensor(shape: [N]),
                                qkv: Tensor(shape: [N, 3 * Dv]), probs: Tensor(shape: [maxBatch, heads, P, P]),
                                att: Tensor(shape: [N, Dv]), xmid: Tensor(shape: [N, Dv]),
                                ln2: Tensor(shape: [N, Dv]), mean2: Tensor(shape: [N]), rstd2: Tensor(shape: [N]),
                                pre: Tensor(shape: [N, Hm]), act: Tensor(shape: [N, Hm])))
            for sfx in VisionEncoder.blockSuffixes {
                blocks[l].w[sfx] = store.values("vision/blocks/\(l)/" + sfx)
                blocks[l].g[sfx] = store.grad("vision/blocks/\(l)/" + sfx)
            }
        }
        patches = Tensor(shape: [N, K])
        let dv = cfg.visionWidth; resid = (0...cfg.visionLayers).map { _ in Tensor(shape: [N, dv]) }
        hv = Tensor(shape: [N, Dv]); meanF = Tensor(shape: [N]); rstdF = Tensor(shape: [N])
        dres = Tensor(shape: [N, Dv]); dln = Tensor(shape: [N, Dv]); dqkv = Tensor(shape: [N, 3 * Dv])
        datt = Tensor(shape: [N, Dv]); dpre = Tensor(shape: [N, Hm]); dhv = Tensor(shape: [N, Dv])
        scratch = Tensor(shape: [8, 2 * P, P])  // Attention.scratchPerWorker for 8 threads
    }

    private func w(_ n: String) -> UnsafeMutablePointer<Float> { store.values(n) }
    private func g(_ n: String) -> UnsafeMutablePointer<Float>? { store.grad(n) }

    /// pixels [B, channels, S, S] → hv [B·P, Dv].
    func forward(pixels: UnsafePointer<Float>, batch: Int) {
        let S = cfg.imageSize, ps = cfg.patchSize, side = S / ps, ch = cfg.channels, N = batch * P
        for b in 0..<batch {
            for py in 0..<side {
                for px in 0..<side {
                    let row = patches.pointer + (b * P + py * side + px) * K
                    var k = 0
                    for c in 0..<ch {
                        for iy in 0..<ps {
                            let src = pixels + ((b * ch + c) * S + py * ps + iy) * S + px * ps
                            for ix in 0..<ps { row[k] = src[ix]; k += 1 }
                        }
                    }
                }
            }
        }
        let x0 = resid[0].pointer, pos = w("vision/pos_embed")
        Linear.forward(y: x0, x: patches.pointer, weight: w("vision/patch_embed/weight"), bias: w("vision/patch_embed/bias"),
                       rows: N, inFeatures: K, outFeatures: Dv)
        for n in 0..<N { let r = x0 + n * Dv, q = pos + (n % P) * Dv; for c in 0..<Dv { r[c] += q[c] } }
        let attention = Attention(batch: batch, seqLen: P, heads: heads, headDim: Dv / heads, causal: false)
        for (li, bl) in blocks.enumerated() {
            let x = resid[li].pointer
            LayerNorm.forward(y: bl.ln1.pointer, mean: bl.mean1.pointer, rstd: bl.rstd1.pointer, x: x, weight: bl.w["norm1/weight"]!,
                              bias: bl.w["norm1/bias"]!, rows: N, width: Dv, eps: cfg.normEps)
            for (j, n) in ["q", "k", "v"].enumerated() {
                Linear.forward(y: bl.qkv.pointer + j * Dv, x: bl.ln1.pointer, weight: bl.w["attn/\(n)/weight"]!,
                               bias: bl.w["attn/\(n)/bias"]!, rows: N, inFeatures: Dv, outFeatures: Dv, ldy: 3 * Dv)
            }
            let q = bl.qkv.pointer
            attention.forward(o: bl.att.pointer, ldo: Dv, probs: bl.probs.pointer, q: q, k: q + Dv, v: q + 2 * Dv, ldqkv: 3 * Dv, lengths: nil)
            bl.xmid.pointer.update(from: x, count: N * Dv)
            Linear.forward(y: bl.xmid.pointer, x: bl.att.pointer, weight: bl.w["attn/o/weight"]!, bias: bl.w["attn/o/bias"]!,
                           rows: N, inFeatures: Dv, outFeatures: Dv, accumulate: true)
            LayerNorm.forward(y: bl.ln2.pointer, mean: bl.mean2.pointer, rstd: bl.rstd2.pointer, x: bl.xmid.pointer,
                              weight: bl.w["norm2/weight"]!, bias: bl.w["norm2/bias"]!, rows: N, width: Dv, eps: cfg.normEps)
            Linear.forward(y: bl.pre.pointer, x: bl.ln2.pointer, weight: bl.w["mlp/fc1/weight"]!, bias: bl.w["mlp/fc1/bias"]!,
                           rows: N, inFeatures: Dv, outFeatures: Hm)
            GELU.forward(y: bl.act.pointer, x: bl.pre.pointer, count: N * Hm)
            let out = resid[li + 1].pointer
            out.update(from: bl.xmid.pointer, count: N * Dv)
            Linear.forward(y: out, x: bl.act.pointer, weight: bl.w["mlp/fc2/weight"]!, bias: bl.w["mlp/fc2/bias"]!,
                           rows: N, inFeatures: Hm, outFeatures: Dv, accumulate: true)
        }
        LayerNorm.forward(y: hv.pointer, mean: meanF.pointer, rstd: rstdF.pointer, x: resid[blocks.count].pointer,
                          weight: w("vision/final_norm/weight"), bias: w("vision/final_norm/bias"), rows: N, width: Dv, eps: cfg.normEps)
    }

    /// Backpropagates `dhv` (∂loss/∂hv) into the vision parameters' gradients.
    func backward(batch: Int) {
        let N = batch * P
        dres.pointer.update(repeating: 0, count: N * Dv)
        LayerNorm.backward(dx: dres.pointer, dweight: g("vision/final_norm/weight"), dbias: g("vision/final_norm/bias"),
                           dy: dhv.pointer, x: resid[blocks.count].pointer, weight: w("vision/final_norm/weight"),
                           mean: meanF.pointer, rstd: rstdF.pointer, rows: N, width: Dv)
        let attention = Attention(batch: batch, seqLen: P, heads: heads, headDim: Dv / heads, causal: false)
        for li in stride(from: blocks.count - 1, through: 0, by: -1) {
            let bl = blocks[li], x = resid[li].pointer
            // MLP branch
            dpre.pointer.update(repeating: 0, count: N * Hm)
            Linear.backward(dx: dpre.pointer, dweight: bl.g["mlp/fc2/weight"]!, dbias: bl.g["mlp/fc2/bias"]!, dy: dres.pointer,
                            x: bl.act.pointer, weight: bl.w["mlp/fc2/weight"]!, rows: N, inFeatures: Hm, outFeatures: Dv)
            GELU.backward(dx: dpre.pointer, dy: dpre.pointer, x: bl.pre.pointer, count: N * Hm)
            dln.pointer.update(repeating: 0, count: N * Dv)
            Linear.backward(dx: dln.pointer, dweight: bl.g["mlp/fc1/weight"]!, dbias: bl.g["mlp/fc1/bias"]!, dy: dpre.pointer,
                            x: bl.ln2.pointer, weight: bl.w["mlp/fc1/weight"]!, rows: N, inFeatures: Dv, outFeatures: Hm)
            LayerNorm.backward(dx: dres.pointer, dweight: bl.g["norm2/weight"]!, dbias: bl.g["norm2/bias"]!, dy: dln.pointer,
                               x: bl.xmid.pointer, weight: bl.w["norm2/weight"]!, mean: bl.mean2.pointer, rstd: bl.rstd2.pointer,
                               rows: N, width: Dv)
            // attention branch
            datt.pointer.update(repeating: 0, count: N * Dv)
            Linear.backward(dx: datt.pointer, dweight: bl.g["attn/o/weight"]!, dbias: bl.g["attn/o/bias"]!, dy: dres.pointer,
                            x: bl.att.pointer, weight: bl.w["attn/o/weight"]!, rows: N, inFeatures: Dv, outFeatures: Dv)
            let q = bl.qkv.pointer
            attention.backward(dq: dqkv.pointer, dk: dqkv.pointer + Dv, dv: dqkv.pointer + 2 * Dv, lddqkv: 3 * Dv,
                               dout: datt.pointer, lddo: Dv, probs: bl.probs.pointer, q: q, k: q + Dv, v: q + 2 * Dv,
                               ldqkv: 3 * Dv, scratch: scratch.pointer)
            dln.pointer.update(repeating: 0, count: N * Dv)
            for (j, n) in ["q", "k", "v"].enumerated() {
                Linear.backward(dx: dln.pointer, dweight: bl.g["attn/\(n)/weight"]!, dbias: bl.g["attn/\(n)/bias"]!,
                                dy: dqkv.pointer + j * Dv, x: bl.ln1.pointer, weight: bl.w["attn/\(n)/weight"]!,
                                rows: N, inFeatures: Dv, outFeatures: Dv, lddy: 3 * Dv)
            }
            LayerNorm.backward(dx: dres.pointer, dweight: bl.g["norm1/weight"]!, dbias: bl.g["norm1/bias"]!, dy: dln.pointer,
                               x: x, weight: bl.w["norm1/weight"]!, mean: bl.mean1.pointer, rstd: bl.rstd1.pointer, rows: N, width: Dv)
        }
        // patch embedding and positions
        if let dpos = g("vision/pos_embed") {
            for n in 0..<N { let d = dpos + (n % P) * Dv, s = dres.pointer + n * Dv; for c in 0..<Dv { d[c] += s[c] } }
        }
        Linear.backward(dx: nil, dweight: g("vision/patch_embed/weight"), dbias: g("vision/patch_embed/bias"), dy: dres.pointer,
                        x: patches.pointer, weight: w("vision/patch_embed/weight"), rows: N, inFeatures: K, outFeatures: Dv)
    }
}
