import PilotTensor

// Shape letters: B sequences, T positions (context), N = B·T rows, C width, H heads, D = C/H,
// F SwiGLU hidden, V vocabulary, M rows that carry a target, R LoRA rank.

/// The Llama-style decoder: pre-RMSNorm blocks with RoPE causal attention and a SwiGLU MLP, LoRA on
/// q, k, v, o, gate, up and down, then final RMSNorm and lm_head on the rows that carry a target.
/// Activations are allocated once for `maxBatch` sequences and reused by every step.
final class LanguageModel {
    let cfg: ModelConfig
    let maxBatch: Int
    let T: Int, C: Int, F: Int, V: Int, H: Int, D: Int
    let rope: RoPE

    struct Layer {
        let attnNorm: UnsafeMutablePointer<Float>, dAttnNorm: UnsafeMutablePointer<Float>?
        let mlpNorm: UnsafeMutablePointer<Float>, dMlpNorm: UnsafeMutablePointer<Float>?
        let qkv: FusedLinear, o: FusedLinear, gateUp: FusedLinear, down: FusedLinear
        // activations
        let h1: Tensor        // [N,C] attn-norm output
        let rstd1: Tensor     // [N]
        let xaQKV: Tensor     // [N, 3·P·R]
        let qkvOut: Tensor    // [N,3C] q,k after RoPE; also the KV cache during generation
        let probs: Tensor     // [B,H,T,T]
        let att: Tensor       // [N,C]
        let xaO: Tensor       // [N, P·R]
        let xmid: Tensor      // [N,C] residual after attention
        let h2: Tensor        // [N,C]
        let rstd2: Tensor     // [N]
        let xaGU: Tensor      // [N, 2·P·R]
        let gu: Tensor        // [N,2F] gate | up
        let sig: Tensor       // [N,F] σ(gate)
        let act: Tensor       // [N,F] silu(gate)⊙up
        let xaDown: Tensor    // [N, P·R]
    }

    let embed: UnsafeMutablePointer<Float>, dEmbed: UnsafeMutablePointer<Float>?
    let finalNorm: UnsafeMutablePointer<Float>, dFinalNorm: UnsafeMutablePointer<Float>?
    let head: UnsafeMutablePointer<Float>, dHead: UnsafeMutablePointer<Float>?
    var layers: [Layer] = []
    /// resid[l] is the input of layer l; resid[L] the output of the last layer. [N,C] each.
    var resid: [Tensor] = []

    // head activations
    let rowIndex: UnsafeMutablePointer<Int32>   // [N] rows carrying a target
    let rowTarget: UnsafeMutablePointer<Int32>  // [N]
    let hg: Tensor        // [N,C] gathered rows
    let hf: Tensor        // [N,C] final-norm output
    let rstdF: Tensor     // [N]
    let logits: Tensor    // [N,V]; only M rows used
    var targetRows = 0

    // backward scratch
    let dres: Tensor, dh: Tensor, dqkv: Tensor, datt: Tensor, dgu: Tensor, dact: Tensor
    let t: Tensor, attnScratch: Tensor

    static func parameterSpecs(_ c: ModelConfig, loraBranches: [String]) -> [ParameterSpec] {
        var s: [ParameterSpec] = []
        let C = c.width, F = c.ffnHidden, R = c.loraRank
        s.append(ParameterSpec("lm/embed", [c.vocabSize, C], group: "lm", init: .normal(std: 1)))
        for l in 0..<c.layers {
            let p = "lm/layers/\(l)/"
            s.append(ParameterSpec(p + "attn_norm/weight", [C], group: "lm", init: .ones))
            let shapes: [(String, String, Int, Int)] = [("attn", "q", C, C), ("attn", "k", C, C), ("attn", "v", C, C), ("attn", "o", C, C),
                                                        ("mlp", "gate", C, F), ("mlp", "up", C, F), ("mlp", "down", F, C)]
            for (blk, n, i, o) in shapes {
                if n == "gate" { s.append(ParameterSpec(p + "mlp_norm/weight", [C], group: "lm", init: .ones)) }
                s.append(ParameterSpec(p + "\(blk)/\(n)/weight", [i, o], group: "lm", init: .normal(std: 1 / Float(i).squareRoot())))
                for br in loraBranches {
                    let g = br.isEmpty ? "lora" : "lora_local"
                    s.append(ParameterSpec(p + "\(blk)/\(n)/\(br)lora_a", [i, R], group: g, init: .uniform(bound: 1 / Float(i).squareRoot())))
                    s.append(ParameterSpec(p + "\(blk)/\(n)/\(br)lora_b", [R, o], group: g,
                                           init: c.loraBInitStd > 0 ? .normal(std: c.loraBInitStd) : .zeros))
                }
            }
        }
        s.append(ParameterSpec("lm/final_norm/weight", [C], group: "lm", init: .ones))
        s.append(ParameterSpec("lm/lm_head/weight", [C, c.vocabSize], group: "lm", init: .normal(std: 1 / Float(C).squareRoot())))
        return s
    }

    init(cfg: ModelConfig, store: ParameterStore, maxBatch: Int, loraBranches: [String]) {
        self.cfg = cfg; self.maxBatch = maxBatch
        T = cfg.contextLength; C = cfg.width; F = cfg.ffnHidden; V = cfg.vocabSize; H = cfg.heads; D = cfg.headDim
        rope = RoPE(headDim: D, maxPositions: T, theta: cfg.ropeTheta)
        let N = maxBatch * T, R = cfg.loraRank, P = loraBranches.count
        embed = store.values("lm/embed"); dEmbed = store.grad("lm/embed")
        finalNorm = store.values("lm/final_norm/weight"); dFinalNorm = store.grad("lm/final_norm/weight")
        head = store.values("lm/lm_head/weight"); dHead = store.grad("lm/lm_head/weight")
        for l in 0..<cfg.layers {
            let p = "lm/layers/\(l)/"
            func fused(_ names: [String], block: String, inF: Int, outs: [Int]) -> FusedLinear {
                var members: [FusedLinear.Member] = [], branches: [FusedLinear.Branch] = []
                var col = 0
                for (m, n) in names.enumerated() {
                    let base = p + "\(block)/\(n)/"
                    members.append(.init(weight: store.values(base + "weight"), dweight: store.grad(base + "weight"), out: outs[m], column: col))
                    col += outs[m]
                    for br in loraBranches {
                        branches.append(.init(member: m, a: store.values(base + br + "lora_a"), b: store.values(base + br + "lora_b"),
                                              da: store.grad(base + br + "lora_a"), db: store.grad(base + br + "lora_b"),
                                              baseScale: cfg.loraScale, isLocal: !br.isEmpty, scale: cfg.loraScale))
                    }
                }
                return FusedLinear(inFeatures: inF, rank: R, members: members, branches: branches)
            }
            layers.append(Layer(
                attnNorm: store.values(p + "attn_norm/weight"), dAttnNorm: store.grad(p + "attn_norm/weight"),
                mlpNorm: store.values(p + "mlp_norm/weight"), dMlpNorm: store.grad(p + "mlp_norm/weight"),
                qkv: fused(["q", "k", "v"], block: "attn", inF: C, outs: [C, C, C]),
                o: fused(["o"], block: "attn", inF: C, outs: [C]),
                gateUp: fused(["gate", "up"], block: "mlp", inF: C, outs: [F, F]),
                down: fused(["down"], block: "mlp", inF: F, outs: [C]),
                h1: Tensor(shape: [N, C]), rstd1: Tensor(shape: [N]), xaQKV: Tensor(shape: [N, max(1, 3 * P * R)]),
                qkvOut: Tensor(shape: [N, 3 * C]), probs: Tensor(shape: [maxBatch, H, T, T]), att: Tensor(shape: [N, C]),
                xaO: Tensor(shape: [N, max(1, P * R)]), xmid: Tensor(shape: [N, C]), h2: Tensor(shape: [N, C]),
                rstd2: Tensor(shape: [N]), xaGU: Tensor(shape: [N, max(1, 2 * P * R)]), gu: Tensor(shape: [N, 2 * F]),
                sig: Tensor(shape: [N, F]), act: Tensor(shape: [N, F]), xaDown: Tensor(shape: [N, max(1, P * R)])))
        }
        let width = cfg.width; resid = (0...cfg.layers).map { _ in Tensor(shape: [N, width]) }
        rowIndex = .allocate(capacity: N); rowTarget = .allocate(capacity: N)
        hg = Tensor(shape: [N, C]); hf = Tensor(shape: [N, C]); rstdF = Tensor(shape: [N]); logits = Tensor(shape: [N, V])
        dres = Tensor(shape: [N, C]); dh = Tensor(shape: [N, C]); dqkv = Tensor(shape: [N, 3 * C]); datt = Tensor(shape: [N, C])
        dgu = Tensor(shape: [N, 2 * F]); dact = Tensor(shape: [N, F])
        t = Tensor(shape: [N, max(1, 3 * P * R)])
        attnScratch = Tensor(shape: [8, T, T])
    }

    deinit { rowIndex.deallocate(); rowTarget.deallocate() }

    /// Merges LoRA into the fused weights; call once after the parameters changed.
    func prepare(localMix: Float) {
        for l in layers { l.qkv.prepare(localMix: localMix); l.o.prepare(localMix: localMix)
                          l.gateUp.prepare(localMix: localMix); l.down.prepare(localMix: localMix) }
    }

    /// Runs every block on resid[0] (filled by the caller) for `batch` sequences.
    func forward(batch: Int, lengths: UnsafePointer<Int32>?) {
        let N = batch * T
        let attention = Attention(batch: batch, seqLen: T, heads: H, headDim: D, causal: true)
        for (li, l) in layers.enumerated() {
            let x = resid[li], out = resid[li + 1]
            RMSNorm.forward(y: l.h1.pointer, rstd: l.rstd1.pointer, x: x.pointer, weight: l.attnNorm, rows: N, width: C, eps: cfg.normEps)
            l.qkv.forward(y: l.qkvOut.pointer, x: l.h1.pointer, xa: l.xaQKV.pointer, rows: N)
            let qkv = l.qkvOut.pointer, rope = self.rope, C = self.C, H = self.H, T = self.T
            Parallel.rows(N, costPerItem: 2 * C, context: (qkv, rope, C, H, T)) { k, lo, hi in
                let (qkv, rope, C, H, T) = k
                for n in lo..<hi {
                    rope.apply(row: qkv + n * 3 * C, heads: H, pos: n % T)
                    rope.apply(row: qkv + n * 3 * C + C, heads: H, pos: n % T)
                }
            }
            attention.forward(o: l.att.pointer, ldo: C, probs: l.probs.pointer, q: qkv, k: qkv + C, v: qkv + 2 * C,
                              ldqkv: 3 * C, lengths: lengths)
            l.xmid.pointer.update(from: x.pointer, count: N * C)
            l.o.forward(y: l.xmid.pointer, x: l.att.pointer, xa: l.xaO.pointer, rows: N, accumulate: true)
            RMSNorm.forward(y: l.h2.pointer, rstd: l.rstd2.pointer, x: l.xmid.pointer, weight: l.mlpNorm, rows: N, width: C, eps: cfg.normEps)
            l.gateUp.forward(y: l.gu.pointer, x: l.h2.pointer, xa: l.xaGU.pointer, rows: N)
            SwiGLU.forward(act: l.act.pointer, sigmoid: l.sig.pointer, g: l.gu.pointer, ldg: 2 * F,
                           u: l.gu.pointer + F, ldu: 2 * F, rows: N, width: F)
            out.pointer.update(from: l.xmid.pointer, count: N * C)
            l.down.forward(y: out.pointer, x: l.act.pointer, xa: l.xaDown.pointer, rows: N, accumulate: true)
        }
    }

    /// Gathers the rows with a target (targets[b·T + t] ≥ 0 is the token position t must predict),
    /// applies final norm, lm_head and cross-entropy; returns the mean CE. With `backward`, writes
    /// ∂CE/∂resid[L] into `dres` (all rows).
    func headLoss(batch: Int, targets: UnsafePointer<Int32>, backward: Bool, gradScale: Float = 1) -> (ce: Double, count: Int) {
        let N = batch * T
        var M = 0
        for n in 0..<N where targets[n] >= 0 { rowIndex[M] = Int32(n); rowTarget[M] = targets[n]; M += 1 }
        targetRows = M
        let last = resid[cfg.layers].pointer
        for m in 0..<M { (hg.pointer + m * C).update(from: last + Int(rowIndex[m]) * C, count: C) }
        RMSNorm.forward(y: hf.pointer, rstd: rstdF.pointer, x: hg.pointer, weight: finalNorm, rows: M, width: C, eps: cfg.normEps)
        Linear.forward(y: logits.pointer, x: hf.pointer, weight: head, bias: nil, rows: M, inFeatures: C, outFeatures: V)
        let r = CrossEntropy.forwardBackward(logits: logits.pointer, targets: rowTarget, rows: M, vocab: V,
                                             dlogits: backward ? logits.pointer : nil, gradScale: gradScale)
        if backward {
            dres.pointer.update(repeating: 0, count: N * C)
            dh.pointer.update(repeating: 0, count: M * C)
            Linear.backward(dx: dh.pointer, dweight: dHead, dbias: nil, dy: logits.pointer, x: hf.pointer, weight: head,
                            rows: M, inFeatures: C, outFeatures: V)
            // d(hg) lands in hf's buffer (hf is no longer needed), then scatters into dres
            hf.pointer.update(repeating: 0, count: M * C)
            RMSNorm.backward(dx: hf.pointer, dweight: dFinalNorm, dy: dh.pointer, x: hg.pointer, weight: finalNorm,
                             rstd: rstdF.pointer, rows: M, width: C)
            for m in 0..<M {
                let d = dres.pointer + Int(rowIndex[m]) * C, s = hf.pointer + m * C
                for c in 0..<C { d[c] += s[c] }
            }
        }
        return (r.loss, r.count)
    }

    /// Backpropagates `dres` (∂loss/∂resid[L]) through every block; leaves ∂loss/∂resid[0] in `dres`.
    func backward(batch: Int) {
        let N = batch * T
        let attention = Attention(batch: batch, seqLen: T, heads: H, headDim: D, causal: true)
        precondition(Parallel.threads <= attnScratch.shape[0], "attention scratch sized for 8 threads")
        for li in stride(from: layers.count - 1, through: 0, by: -1) {
            let l = layers[li], x = resid[li]
            // MLP: out = xmid + down(swiglu(gateUp(norm(xmid))))
            l.down.backward(dx: dact.pointer, accumulateDx: false, dy: dres.pointer, x: l.act.pointer, xa: l.xaDown.pointer, rows: N, t: t.pointer)
            SwiGLU.backward(dg: dgu.pointer, lddg: 2 * F, du: dgu.pointer + F, lddu: 2 * F, dact: dact.pointer,
                            sigmoid: l.sig.pointer, g: l.gu.pointer, ldg: 2 * F, u: l.gu.pointer + F, ldu: 2 * F, rows: N, width: F)
            l.gateUp.backward(dx: dh.pointer, accumulateDx: false, dy: dgu.pointer, x: l.h2.pointer, xa: l.xaGU.pointer, rows: N, t: t.pointer)
            RMSNorm.backward(dx: dres.pointer, dweight: l.dMlpNorm, dy: dh.pointer, x: l.xmid.pointer, weight: l.mlpNorm,
                             rstd: l.rstd2.pointer, rows: N, width: C)
            // attention: xmid = x + o(attn(rope(qkv(norm(x)))))
            l.o.backward(dx: datt.pointer, accumulateDx: false, dy: dres.pointer, x: l.att.pointer, xa: l.xaO.pointer, rows: N, t: t.pointer)
            let qkv = l.qkvOut.pointer
            attention.backward(dq: dqkv.pointer, dk: dqkv.pointer + C, dv: dqkv.pointer + 2 * C, lddqkv: 3 * C,
                               dout: datt.pointer, lddo: C, probs: l.probs.pointer, q: qkv, k: qkv + C, v: qkv + 2 * C,
                               ldqkv: 3 * C, scratch: attnScratch.pointer)
            let dq = dqkv.pointer, rope = self.rope, C = self.C, H = self.H, T = self.T
            Parallel.rows(N, costPerItem: 2 * C, context: (dq, rope, C, H, T)) { k, lo, hi in
                let (dq, rope, C, H, T) = k
                for n in lo..<hi {
                    rope.apply(row: dq + n * 3 * C, heads: H, pos: n % T, inverse: true)
                    rope.apply(row: dq + n * 3 * C + C, heads: H, pos: n % T, inverse: true)
                }
            }
            l.qkv.backward(dx: dh.pointer, accumulateDx: false, dy: dqkv.pointer, x: l.h1.pointer, xa: l.xaQKV.pointer, rows: N, t: t.pointer)
            RMSNorm.backward(dx: dres.pointer, dweight: l.dAttnNorm, dy: dh.pointer, x: x.pointer, weight: l.attnNorm,
                             rstd: l.rstd1.pointer, rows: N, width: C)
        }
    }
}
