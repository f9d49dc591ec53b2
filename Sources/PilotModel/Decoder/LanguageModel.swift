import PilotLM
import PilotTensor

// Shape letters: B sequences, T positions (context), N = B·T rows, C width, H heads, D = C/H,
// KV key/value heads, KVD = KV·D, W = C + 2·KVD (one q|k|v row), F SwiGLU hidden, V vocabulary,
// M rows that carry a target, R LoRA rank.

/// The one Llama-family decoder (transformers' `LlamaForCausalLM` / `Qwen2ForCausalLM`): pre-RMSNorm
/// blocks with RoPE causal (grouped-query) attention and a SwiGLU MLP, LoRA on q, k, v, o, gate, up and
/// down, then final RMSNorm and lm_head. It trains (`forward`, `headLoss`, `backward`: lm_head on the
/// rows that carry a target), evaluates the multimodal model and generates text (`step` with a `KVCache`,
/// LanguageModel+Step.swift; the text API in LanguageModel+Text.swift). Training activations are
/// allocated once for `maxBatch` sequences and reused by every step.
///
/// Two kinds of base: the built-in LM, whose weights are parameters of the model (`[in, out]`, trained
/// from scratch in pretraining), or an imported pretrained LM (`base`), frozen and shared by every
/// model on the rank, read in place in Hugging Face layout (`FusedLinear`'s frozen mode; the tied
/// head is the embedding table). With a base, attention probabilities are recomputed in the backward
/// pass instead of being stored (memory O(workers·32·T), attention being tiled over 32-row query blocks, instead of O(layers·B·H·T²)).
/// With `recomputesActivations` (`train.recompute_activations`, transformers' gradient checkpointing)
/// the layers share one set of activation buffers: the forward pass keeps only each layer's input
/// (`resid`), and the backward pass reruns a layer's forward just before its backward
/// (LanguageModel+Recompute.swift), with the same kernels in the same order, so the gradients are
/// the same bits.
public final class LanguageModel {
    let cfg: ModelConfig
    let maxBatch: Int
    /// Tokens per sequence of one cached `step` (1 for the multimodal model's decoding; a prompt chunk
    /// for text generation).
    let maxStepTokens: Int
    /// Whether the training activations (for `maxBatch` × T rows) exist; an inference-only decoder
    /// (`pilot generate`) has just the weights, the step buffers and its KV caches.
    let trains: Bool
    /// Whether every layer shares one set of activation buffers, recomputed in the backward pass.
    let recomputesActivations: Bool
    /// Recompute mode: the layer whose activations the shared buffers hold (nil: none, or stale).
    var heldLayer: Int?
    /// Recompute mode: the forward pass's keys and values for decoding (`forwardCache`), made when a
    /// forward is asked to keep them; the view of `qkvOut` that the other mode uses would see only
    /// the last layer's.
    var keptKeysValues: KVCache?, keptKeysValuesAreCurrent = false
    let T: Int, C: Int, F: Int, V: Int, H: Int, D: Int, KV: Int, KVD: Int, W: Int
    let rope: RoPE
    /// The imported frozen LM, when there is one.
    let base: LlamaWeights?

    struct Layer {
        let attnNorm: UnsafeMutablePointer<Float>, dAttnNorm: UnsafeMutablePointer<Float>?
        let mlpNorm: UnsafeMutablePointer<Float>, dMlpNorm: UnsafeMutablePointer<Float>?
        let qkv: FusedLinear, o: FusedLinear, gateUp: FusedLinear, down: FusedLinear
        // activations
        let h1: Tensor        // [N,C] attn-norm output
        let rstd1: Tensor     // [N]
        let xaQKV: Tensor     // [N, branches·R]
        let qkvOut: Tensor    // [N,W] q,k after RoPE; also the KV cache during generation
        let probs: Tensor?    // [B,H,T,T] (built-in LM only; recomputed with a base)
        let att: Tensor       // [N,C]
        let xaO: Tensor       // [N, P·R]
        let xmid: Tensor      // [N,C] residual after attention
        let h2: Tensor        // [N,C]
        let rstd2: Tensor     // [N]
        let xaGU: Tensor      // [N, 2·P·R]
        let gu: Tensor        // [N,2F] gate | up (σ(gate) and silu(gate)⊙up are recomputed from it)
        let xaDown: Tensor    // [N, P·R]
    }

    /// The token embedding table [V, C] (the built-in LM's parameter, or the base's in its dtype).
    let embedding: FrozenMatrix, dEmbed: UnsafeMutablePointer<Float>?
    let finalNorm: UnsafeMutablePointer<Float>, dFinalNorm: UnsafeMutablePointer<Float>?
    /// The built-in LM's head [C, V] and its gradient (nil with a base).
    let head: UnsafeMutablePointer<Float>?, dHead: UnsafeMutablePointer<Float>?
    /// The base's frozen head [V, C] (nil for the built-in LM).
    let frozenHead: FrozenMatrix?
    /// Products against the base's frozen matrices (f32 in place; bf16 on oneDNN's bf16 matmul where the CPU has one, else decoded in tiles; q8 decoded in tiles).
    let products = FrozenProducts()
    var layers: [Layer] = []
    /// resid[l] is the input of layer l; resid[L] the output of the last layer. [N,C] each.
    var resid: [Tensor] = []

    // head activations
    let rowIndex: UnsafeMutablePointer<Int32>   // [N] rows carrying a target
    let rowTarget: UnsafeMutablePointer<Int32>  // [N]
    let hg: Tensor        // [N,C] gathered rows
    let hf: Tensor        // [N,C] final-norm output
    let rstdF: Tensor     // [N]
    let logits: Tensor    // [min(N, headRowBlock), V]: one block of target rows at a time
    var targetRows = 0

    /// [N,F] σ(gate) and silu(gate)⊙up of the layer being run: shared by all layers, recomputed from
    /// that layer's `gu` in the backward pass (same function, same input, same bits), which saves
    /// 2·F floats per token per layer (≈ 750 MB at 1 × 2048 for SmolLM2) for one elementwise pass.
    let sig: Tensor, act: Tensor

    // backward scratch
    let dres: Tensor, dh: Tensor, dqkv: Tensor, datt: Tensor, dgu: Tensor, dact: Tensor
    let t: Tensor
    /// [workers, Attention.scratchPerWorker]: sized for max(8, `Parallel.threads`) when built, regrown
    /// (outside the step's steady state) if the thread count rises; O(workers·queryBlock·T), not O(T²).
    private(set) var attnScratch: Tensor

    /// The LoRA targets in layer order: (block, name, input width, output width).
    static func linearShapes(_ c: ModelConfig) -> [(block: String, name: String, inF: Int, outF: Int)] {
        let C = c.width, F = c.ffnHidden, KVD = c.kvHeadCount * c.headDim
        return [("attn", "q", C, C), ("attn", "k", C, KVD), ("attn", "v", C, KVD), ("attn", "o", C, C),
                ("mlp", "gate", C, F), ("mlp", "up", C, F), ("mlp", "down", F, C)]
    }

    /// The LM's parameters. With an imported LM (`c.lm` set) only the LoRA adapters are parameters
    /// (on `c.loraTargetNames`); the base lives in the shared `LlamaWeights`.
    static func parameterSpecs(_ c: ModelConfig, loraBranches: [String]) -> [ParameterSpec] {
        var s: [ParameterSpec] = []
        let C = c.width, R = c.loraRank
        let external = c.lm != nil
        let targets = Set(c.loraTargetNames)
        if !external { s.append(ParameterSpec("lm/embed", [c.vocabSize, C], group: "lm", init: .normal(std: 1))) }
        for l in 0..<c.layers {
            let p = "lm/layers/\(l)/"
            if !external { s.append(ParameterSpec(p + "attn_norm/weight", [C], group: "lm", init: .ones)) }
            for (blk, n, i, o) in linearShapes(c) {
                if n == "gate" && !external { s.append(ParameterSpec(p + "mlp_norm/weight", [C], group: "lm", init: .ones)) }
                if !external {
                    s.append(ParameterSpec(p + "\(blk)/\(n)/weight", [i, o], group: "lm", init: .normal(std: 1 / Float(i).squareRoot())))
                }
                guard targets.contains(n) else { continue }
                for br in loraBranches {
                    let g = br.isEmpty ? "lora" : "lora_local"
                    let bound = 1 / Float(i).squareRoot()
                    s.append(ParameterSpec(p + "\(blk)/\(n)/\(br)lora_a", [i, R], group: g,
                                           init: (c.loraInitRank ?? R) > R ? .uniformLeadingColumns(bound: bound, columns: c.loraInitRank!) : .uniform(bound: bound)))
                    s.append(ParameterSpec(p + "\(blk)/\(n)/\(br)lora_b", [R, o], group: g,
                                           init: c.loraBInitStd > 0 ? .normal(std: c.loraBInitStd) : .zeros))
                }
            }
        }
        if !external {
            s.append(ParameterSpec("lm/final_norm/weight", [C], group: "lm", init: .ones))
            s.append(ParameterSpec("lm/lm_head/weight", [C, c.vocabSize], group: "lm", init: .normal(std: 1 / Float(C).squareRoot())))
        }
        return s
    }

    /// - Parameters:
    ///   - base: the imported LM's weights; required exactly when `cfg.lm` is set.
    ///   - training: false allocates no training activations (then only `step` runs).
    ///   - maxStepTokens: tokens per sequence of one `step`.
    ///   - recomputeActivations: one set of layer activations for all layers, recomputed in the backward pass.
    init(cfg: ModelConfig, store: ParameterStore, maxBatch: Int, loraBranches: [String], base: LlamaWeights? = nil,
         training: Bool = true, maxStepTokens: Int = 1, recomputeActivations: Bool = false) {
        precondition((cfg.lm != nil) == (base != nil), "LanguageModel: an imported LM needs its weights and only then")
        self.cfg = cfg; self.maxBatch = maxBatch; self.base = base
        self.trains = training; self.maxStepTokens = maxStepTokens
        recomputesActivations = training && recomputeActivations
        T = cfg.contextLength; C = cfg.width; F = cfg.ffnHidden; V = cfg.vocabSize; H = cfg.heads; D = cfg.headDim
        KV = cfg.kvHeadCount; KVD = KV * D; W = C + 2 * KVD
        rope = RoPE(headDim: D, maxPositions: T, theta: cfg.ropeTheta)
        // one placeholder row when inference-only: Tensor zero-fills, so full buffers would be resident
        let N = training ? maxBatch * T : 1, R = cfg.loraRank
        let targets = Set(cfg.loraTargetNames)
        if let base {
            embedding = base.embedding; dEmbed = nil
            finalNorm = base.norm; dFinalNorm = nil
            head = nil; dHead = nil; frozenHead = base.head
        } else {
            embedding = FrozenMatrix(rows: V, cols: C, float32: store.values("lm/embed")); dEmbed = store.grad("lm/embed")
            finalNorm = store.values("lm/final_norm/weight"); dFinalNorm = store.grad("lm/final_norm/weight")
            head = store.values("lm/lm_head/weight"); dHead = store.grad("lm/lm_head/weight"); frozenHead = nil
        }
        var maxPR = 1
        for l in 0..<cfg.layers {
            let p = "lm/layers/\(l)/"
            func branches(_ names: [String], block: String) -> [FusedLinear.Branch] {
                var out: [FusedLinear.Branch] = []
                for (m, n) in names.enumerated() where targets.contains(n) {
                    let b = p + "\(block)/\(n)/"
                    for br in loraBranches {
                        out.append(.init(member: m, a: store.values(b + br + "lora_a"), b: store.values(b + br + "lora_b"),
                                         da: store.grad(b + br + "lora_a"), db: store.grad(b + br + "lora_b"),
                                         baseScale: cfg.loraScale, isLocal: !br.isEmpty, scale: cfg.loraScale))
                    }
                }
                return out
            }
            func fused(_ names: [String], block: String, inF: Int, outs: [Int]) -> FusedLinear {
                var members: [FusedLinear.Member] = [], col = 0
                for (m, n) in names.enumerated() {
                    let b = p + "\(block)/\(n)/"
                    members.append(.init(weight: store.values(b + "weight"), dweight: store.grad(b + "weight"), out: outs[m], column: col))
                    col += outs[m]
                }
                return FusedLinear(inFeatures: inF, rank: R, members: members, branches: branches(names, block: block))
            }
            let qkv: FusedLinear, o: FusedLinear, gateUp: FusedLinear, down: FusedLinear
            let attnNorm: UnsafeMutablePointer<Float>, mlpNorm: UnsafeMutablePointer<Float>
            var dAttnNorm: UnsafeMutablePointer<Float>? = nil, dMlpNorm: UnsafeMutablePointer<Float>? = nil
            if let base {
                let w = base.layers[l]
                // q|k|v and gate|up are contiguous [out, in] blocks in LlamaWeights' table order
                if let qb = w.qBias { precondition(w.kBias == qb + C && w.vBias == qb + C + KVD, "LlamaWeights layout: q,k,v biases must be contiguous") }
                qkv = FusedLinear(inFeatures: C, rank: R, frozenBase: base.qkv(l), products: products, bias: w.qBias, outs: [C, KVD, KVD],
                                  branches: branches(["q", "k", "v"], block: "attn"))
                o = FusedLinear(inFeatures: C, rank: R, frozenBase: base.o(l), products: products, bias: w.oBias, outs: [C],
                                branches: branches(["o"], block: "attn"))
                gateUp = FusedLinear(inFeatures: C, rank: R, frozenBase: base.gateUp(l), products: products, outs: [F, F],
                                     branches: branches(["gate", "up"], block: "mlp"))
                down = FusedLinear(inFeatures: F, rank: R, frozenBase: base.down(l), products: products, outs: [C],
                                   branches: branches(["down"], block: "mlp"))
                attnNorm = w.inputLayernorm; mlpNorm = w.postAttentionLayernorm
            } else {
                qkv = fused(["q", "k", "v"], block: "attn", inF: C, outs: [C, KVD, KVD])
                o = fused(["o"], block: "attn", inF: C, outs: [C])
                gateUp = fused(["gate", "up"], block: "mlp", inF: C, outs: [F, F])
                down = fused(["down"], block: "mlp", inF: F, outs: [C])
                attnNorm = store.values(p + "attn_norm/weight"); dAttnNorm = store.grad(p + "attn_norm/weight")
                mlpNorm = store.values(p + "mlp_norm/weight"); dMlpNorm = store.grad(p + "mlp_norm/weight")
            }
            if !training { for f in [qkv, o, gateUp, down] { f.singleRowGEMV = true } }
            maxPR = max(maxPR, qkv.packedWidth, o.packedWidth, gateUp.packedWidth, down.packedWidth)
            // recompute mode: every layer's activations are layer 0's buffers
            let first = recomputesActivations ? layers.first : nil
            func buffer(_ shape: [Int], _ field: KeyPath<Layer, Tensor>) -> Tensor {
                guard let first else { return Tensor(shape: shape) }
                precondition(first[keyPath: field].shape == shape, "LanguageModel: layers with different activation shapes cannot share buffers")
                return first[keyPath: field]
            }
            let probs = base == nil && training ? first?.probs ?? Tensor(shape: [maxBatch, H, T, T]) : nil
            layers.append(Layer(
                attnNorm: attnNorm, dAttnNorm: dAttnNorm, mlpNorm: mlpNorm, dMlpNorm: dMlpNorm,
                qkv: qkv, o: o, gateUp: gateUp, down: down,
                h1: buffer([N, C], \.h1), rstd1: buffer([N], \.rstd1), xaQKV: buffer([N, max(1, qkv.packedWidth)], \.xaQKV),
                qkvOut: buffer([N, W], \.qkvOut), probs: probs, att: buffer([N, C], \.att),
                xaO: buffer([N, max(1, o.packedWidth)], \.xaO), xmid: buffer([N, C], \.xmid), h2: buffer([N, C], \.h2),
                rstd2: buffer([N], \.rstd2), xaGU: buffer([N, max(1, gateUp.packedWidth)], \.xaGU), gu: buffer([N, 2 * F], \.gu),
                xaDown: buffer([N, max(1, down.packedWidth)], \.xaDown)))
        }
        let width = cfg.width; resid = (0...cfg.layers).map { _ in Tensor(shape: [N, width]) }
        rowIndex = .allocate(capacity: N); rowTarget = .allocate(capacity: N)
        hg = Tensor(shape: [N, C]); hf = Tensor(shape: [N, C]); rstdF = Tensor(shape: [N])
        logits = Tensor(shape: [min(N, LanguageModel.headRowBlock), V])
        dres = Tensor(shape: [N, C]); dh = Tensor(shape: [N, C]); dqkv = Tensor(shape: [N, W]); datt = Tensor(shape: [N, C])
        dgu = Tensor(shape: [N, 2 * F]); dact = Tensor(shape: [N, F])
        sig = Tensor(shape: [N, F]); act = Tensor(shape: [N, F])
        t = Tensor(shape: [N, maxPR])
        let perWorker = training ? Attention(batch: 1, seqLen: T, heads: H, headDim: D, kvHeads: KV, causal: true).scratchPerWorker : 1
        attnScratch = Tensor(shape: [max(LanguageModel.scratchWorkers, Parallel.threads), perWorker])
    }

    /// Target rows that go through lm_head and cross-entropy together: the logits buffer is
    /// [headRowBlock, V] (100 MB for a 49k vocabulary) however long the sequences are.
    static let headRowBlock = 512

    /// Workers the attention scratch is sized for at least: another thread may reconfigure the pool
    /// while this model runs (parallel tests do), and at 2·32·T floats per worker 8 workers cost 4 MB
    /// at T = 2048, so the floor is cheap insurance against a worker index past the buffer.
    static let scratchWorkers = 8

    /// The attention scratch, grown first if the pool now has more workers than it was sized for.
    func attentionScratch() -> UnsafeMutablePointer<Float> {
        if Parallel.threads > attnScratch.shape[0] { attnScratch = Tensor(shape: [Parallel.threads, attnScratch.shape[1]]) }
        return attnScratch.pointer
    }

    /// Buffers of the cached `step` (LanguageModel+Step.swift), made on the first step.
    var decodeState: DecodeState?

    /// x·A buffer width for decoding scratch (the widest fused linear).
    var maxPackedWidth: Int { t.shape[1] }

    deinit { rowIndex.deallocate(); rowTarget.deallocate() }

    /// Merges LoRA into the fused weights; call once after the parameters changed.
    func prepare(localMix: Float) {
        for l in layers { l.qkv.prepare(localMix: localMix); l.o.prepare(localMix: localMix)
                          l.gateUp.prepare(localMix: localMix); l.down.prepare(localMix: localMix) }
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
        if backward {
            dres.pointer.update(repeating: 0, count: N * C)
            dh.pointer.update(repeating: 0, count: M * C)
        }
        // lm_head and CE per block of target rows (one block at the bench's 4×128); the CE gradient is
        // normalised by all M rows, the loss summed over blocks
        var total = 0.0, count = 0, single: (loss: Double, count: Int)? = nil
        for m0 in stride(from: 0, to: M, by: LanguageModel.headRowBlock) {
            let rows = min(LanguageModel.headRowBlock, M - m0)
            let h = hf.pointer + m0 * C, dhb = dh.pointer + m0 * C
            if let frozenHead {
                products.forward(y: logits.pointer, x: h, rows: rows, weight: frozenHead)
            } else {
                Linear.forward(y: logits.pointer, x: h, weight: head!, bias: nil, rows: rows, inFeatures: C, outFeatures: V)
            }
            let r = CrossEntropy.forwardBackward(logits: logits.pointer, targets: rowTarget + m0, rows: rows, vocab: V,
                                                 dlogits: backward ? logits.pointer : nil, gradScale: gradScale,
                                                 normalizer: M)
            total += r.loss * Double(r.count); count += r.count
            single = m0 == 0 && rows == M ? r : nil
            if backward {
                if let frozenHead {
                    // frozen [V, C] head: dh = dlogits·head (no weight gradient)
                    products.backward(dx: dhb, dy: logits.pointer, rows: rows, weight: frozenHead)
                } else {
                    Linear.backward(dx: dhb, dweight: dHead, dbias: nil, dy: logits.pointer, x: h, weight: head!,
                                    rows: rows, inFeatures: C, outFeatures: V)
                }
            }
        }
        if backward {
            // d(hg) lands in hf's buffer (hf is no longer needed), then scatters into dres
            hf.pointer.update(repeating: 0, count: M * C)
            RMSNorm.backward(dx: hf.pointer, dweight: dFinalNorm, dy: dh.pointer, x: hg.pointer, weight: finalNorm,
                             rstd: rstdF.pointer, rows: M, width: C)
            for m in 0..<M {
                let d = dres.pointer + Int(rowIndex[m]) * C, s = hf.pointer + m * C
                for c in 0..<C { d[c] += s[c] }
            }
        }
        if let single { return (single.loss, single.count) }
        return (count > 0 ? total / Double(count) : 0, count)
    }

    /// Backpropagates `dres` (∂loss/∂resid[L]) through every block; leaves ∂loss/∂resid[0] in `dres`.
    /// With `inputGradient` false (a frozen embedding and nothing before it), layer 0 skips dx of q|k|v
    /// and the attention norm's backward when they feed nothing trainable; `dres` is then left stale.
    func backward(batch: Int, lengths: UnsafePointer<Int32>? = nil, inputGradient: Bool = true) {
        let N = batch * T
        let attention = Attention(batch: batch, seqLen: T, heads: H, headDim: D, kvHeads: KV, causal: true)
        let scratch = attentionScratch()
        for li in stride(from: layers.count - 1, through: 0, by: -1) {
            let l = layers[li], x = resid[li]
            if recomputesActivations && heldLayer != li {
                layerForward(li, batch: batch, attention: attention, scratch: scratch, lengths: lengths, output: false)
                heldLayer = li
            }
            // MLP: out = xmid + down(swiglu(gateUp(norm(xmid))))
            SwiGLU.forward(act: act.pointer, sigmoid: sig.pointer, g: l.gu.pointer, ldg: 2 * F,
                           u: l.gu.pointer + F, ldu: 2 * F, rows: N, width: F)
            l.down.backward(dx: dact.pointer, accumulateDx: false, dy: dres.pointer, x: act.pointer, xa: l.xaDown.pointer, rows: N, t: t.pointer)
            SwiGLU.backward(dg: dgu.pointer, lddg: 2 * F, du: dgu.pointer + F, lddu: 2 * F, dact: dact.pointer,
                            sigmoid: sig.pointer, g: l.gu.pointer, ldg: 2 * F, u: l.gu.pointer + F, ldu: 2 * F, rows: N, width: F)
            l.gateUp.backward(dx: dh.pointer, accumulateDx: false, dy: dgu.pointer, x: l.h2.pointer, xa: l.xaGU.pointer, rows: N, t: t.pointer)
            RMSNorm.backward(dx: dres.pointer, dweight: l.dMlpNorm, dy: dh.pointer, x: l.xmid.pointer, weight: l.mlpNorm,
                             rstd: l.rstd2.pointer, rows: N, width: C)
            // attention: xmid = x + o(attn(rope(qkv(norm(x)))))
            l.o.backward(dx: datt.pointer, accumulateDx: false, dy: dres.pointer, x: l.att.pointer, xa: l.xaO.pointer, rows: N, t: t.pointer)
            let qkv = l.qkvOut.pointer
            attention.backward(dq: dqkv.pointer, dk: dqkv.pointer + C, dv: dqkv.pointer + C + KVD, lddqkv: W,
                               dout: datt.pointer, lddo: C, probs: l.probs.map { UnsafePointer($0.pointer) }, q: qkv, k: qkv + C,
                               v: qkv + C + KVD, ldqkv: W, scratch: scratch, lengths: lengths)
            let dq = dqkv.pointer, rope = self.rope, C = self.C, H = self.H, KV = self.KV, T = self.T, W = self.W
            Parallel.rows(N, costPerItem: 2 * C, context: (dq, rope, C, H, KV, T, W)) { k, lo, hi in
                let (dq, rope, C, H, KV, T, W) = k
                for n in lo..<hi {
                    rope.apply(row: dq + n * W, heads: H, pos: n % T, inverse: true)
                    rope.apply(row: dq + n * W + C, heads: KV, pos: n % T, inverse: true)
                }
            }
            if li == 0 && !inputGradient && l.dAttnNorm == nil {
                l.qkv.backward(dx: nil, accumulateDx: false, dy: dqkv.pointer, x: l.h1.pointer, xa: l.xaQKV.pointer, rows: N, t: t.pointer)
                break
            }
            l.qkv.backward(dx: dh.pointer, accumulateDx: false, dy: dqkv.pointer, x: l.h1.pointer, xa: l.xaQKV.pointer, rows: N, t: t.pointer)
            RMSNorm.backward(dx: dres.pointer, dweight: l.dAttnNorm, dy: dh.pointer, x: x.pointer, weight: l.attnNorm,
                             rstd: l.rstd1.pointer, rows: N, width: C)
        }
    }
}

extension LanguageModel {
    /// out[n, :] = the embedding of tokens[n] for n < count (rows `ldo` apart), decoded from the base's dtype.
    func embed(out: UnsafeMutablePointer<Float>, tokens: UnsafePointer<Int32>, count: Int, ldo: Int? = nil) {
        let ldo = ldo ?? C
        if let table = embedding.float32 {
            Embedding.forward(out: out, tokens: tokens, table: table, count: count, width: C, ldo: ldo)
        } else {
            for n in 0..<count { embedding.decodeRow(Int(tokens[n]), into: out + n * ldo) }
        }
    }
}
