import Foundation
import PilotCore
import PilotTensor

// Shape letters (Sources/PilotLM/CLIP): B images, Ch channels (3), I image side, p patch side, G = I/p patches
// per side, P = G² patches, S = P + 1 tokens (CLS first), C hidden_size, F intermediate_size, H heads,
// D = C/H head_dim, L layers.

/// transformers' `CLIPVisionModel` (modeling_clip.py) as a forward-only feature extractor, the vision tower
/// of LLaVA:
///
///   patches = conv(pixels; patch_embedding, stride p, no bias)                   [B, P, C]
///   x = [class_embedding; patches] + position_embedding                         [B, S, C]
///   x = pre_layrnorm(x)                                     hidden_states[0]
///   per layer:  x += out_proj(attention(q_proj, k_proj, v_proj of layer_norm1(x)))   (all with bias, no mask)
///               x += fc2(act(fc1(layer_norm2(x))))          hidden_states[l + 1]
///   (post_layernorm acts only on the pooled CLS output, which LLaVA does not use)
///
/// `features` returns one entry of hidden_states — LLaVA's `vision_feature_layer` −2, the penultimate, by
/// default — without the CLS token (LLaVA's "patch" select strategy), running only the layers it needs.
/// Images run one at a time: every projection and the patch embedding (as an im2col product) is one
/// `sgemm` over an image's S rows, in the same buffers for every image. So an image's features are the
/// same bits whatever batch it comes in and wherever it sits in it (OpenBLAS rounds a row of a 34-row
/// product differently from the same row of a 17-row one), which is what lets a run keep them in a cache
/// (`docs/models.md`, "Cached vision features"). Not for concurrent calls: the activations are the tower's own.
public final class CLIPVisionTower: @unchecked Sendable {
    public let config: CLIPVisionConfig
    public let weights: CLIPVisionWeights

    /// Which tokens `features` returns: the patches only (LLaVA's default) or CLS first, then the patches.
    public enum Select: Sendable { case patch, clsPatch }

    private var capacity = 0      // images the activations are allocated for (one: images run one at a time)
    private var buffers: [UnsafeMutablePointer<Float>] = []
    private var x: UnsafeMutablePointer<Float>! = nil       // [B·S, C] residual stream
    private var h: UnsafeMutablePointer<Float>! = nil       // [B·S, C] normed input of a sublayer, then its output
    private var q: UnsafeMutablePointer<Float>! = nil       // [B·S, C]
    private var k: UnsafeMutablePointer<Float>! = nil       // [B·S, C]
    private var v: UnsafeMutablePointer<Float>! = nil       // [B·S, C]
    private var att: UnsafeMutablePointer<Float>! = nil     // [B·S, C] attention output before out_proj
    private var mlp: UnsafeMutablePointer<Float>! = nil     // [B·S, F]; also the im2col patches [B·P, Ch·p·p]
    private var scores: UnsafeMutablePointer<Float>? = nil  // [workers, S, S] attention weights, one block per worker
    private var scoreWorkers = 0

    public init(config: CLIPVisionConfig, weights: CLIPVisionWeights) {
        self.config = config; self.weights = weights
    }

    /// Loads a directory that `CLIPVisionModel.save_pretrained` (or `CLIPModel`'s) wrote: config.json and
    /// model.safetensors (or shards), F32/F16/BF16.
    public static func load(directory: String) throws -> CLIPVisionTower {
        let config = try CLIPVisionConfig.load(directory: directory)
        let weights = try CLIPVisionWeights(config: config, source: try SafetensorsCheckpoint(directory: directory))
        return CLIPVisionTower(config: config, weights: weights)
    }

    deinit { for p in buffers { p.deallocate() }; scores?.deallocate() }

    /// Tokens per image of `features(select:)`: P, or P + 1 with the CLS token.
    public func tokens(_ select: Select = .patch) -> Int { config.numPatches + (select == .clsPatch ? 1 : 0) }

    /// `pixels` [B, Ch, I, I], already normalised (CLIPImageNormalization) → hidden_states[`layer`] as
    /// [B, tokens, C], `layer` indexing the L + 1 hidden states as Python does (−2 is the penultimate layer's
    /// output, 0 the embeddings after pre_layrnorm, −1 or L the last layer's output).
    public func features(pixels: [Float], batch B: Int, layer: Int = -2, select: Select = .patch) throws -> [Float] {
        let c = config, S = c.numPatches + 1, C = c.hiddenSize
        let per = c.numChannels * c.imageSize * c.imageSize
        guard B > 0, pixels.count == B * per else {
            throw PilotError.invalidArgument("CLIP vision tower: \(pixels.count) pixel values are not \(B) images of \(c.numChannels)×\(c.imageSize)×\(c.imageSize) (channels first); resize to image_size \(c.imageSize) first")
        }
        let L = c.numHiddenLayers
        guard layer >= -(L + 1), layer <= L else {
            throw PilotError.invalidArgument("CLIP vision tower: layer \(layer) is outside the \(L + 1) hidden states (-\(L + 1)...\(L))")
        }
        if let bad = pixels.firstIndex(where: { !$0.isFinite }) {
            throw PilotError.invalidArgument("CLIP vision tower: pixel value \(bad) is \(pixels[bad]); expected finite normalised values")
        }
        ensureCapacity(1)
        let run = layer < 0 ? layer + L + 1 : layer
        let skip = select == .patch ? 1 : 0, T = S - skip
        var out = [Float](repeating: 0, count: B * T * C)
        pixels.withUnsafeBufferPointer { px in
            out.withUnsafeMutableBufferPointer { o in
                for b in 0..<B {
                    embed(px.baseAddress! + b * per, B: 1)
                    for l in 0..<run { block(l, B: 1) }
                    (o.baseAddress! + b * T * C).update(from: x + skip * C, count: T * C)
                }
            }
        }
        return out
    }

    private func ensureCapacity(_ B: Int) {
        guard B > capacity else { return }
        for p in buffers { p.deallocate() }
        buffers = []
        let c = config, R = B * (c.numPatches + 1), C = c.hiddenSize
        func buffer(_ n: Int) -> UnsafeMutablePointer<Float> {
            let p = UnsafeMutablePointer<Float>.allocate(capacity: max(1, n)); buffers.append(p); return p
        }
        x = buffer(R * C); h = buffer(R * C); q = buffer(R * C); k = buffer(R * C); v = buffer(R * C); att = buffer(R * C)
        mlp = buffer(max(R * c.intermediateSize, B * c.numPatches * c.numChannels * c.patchSize * c.patchSize))
        capacity = B
    }

    /// x = pre_layrnorm([class_embedding; conv(pixels)] + position_embedding).
    private func embed(_ pixels: UnsafePointer<Float>, B: Int) {
        let c = config, C = c.hiddenSize, G = c.gridSize, p = c.patchSize, I = c.imageSize, Ch = c.numChannels
        let P = c.numPatches, S = P + 1, K = Ch * p * p
        // im2col: row (b, gy·G + gx) holds the patch in the conv weight's (channel, ky, kx) order
        let cols = mlp!
        for b in 0..<B {
            for gy in 0..<G {
                for gx in 0..<G {
                    let row = cols + (b * P + gy * G + gx) * K
                    for ch in 0..<Ch {
                        for ky in 0..<p {
                            let src = pixels + ((b * Ch + ch) * I + gy * p + ky) * I + gx * p
                            (row + (ch * p + ky) * p).update(from: src, count: p)
                        }
                    }
                }
            }
        }
        // the patch rows of every image, written straight into the token rows 1 ... P
        for b in 0..<B {
            sgemm(transB: true, m: P, n: C, k: K, a: cols + b * P * K, b: weights.patchEmbedding,
                  c: h + (b * S + 1) * C)
            (h + b * S * C).update(from: weights.classEmbedding, count: C)
            for t in 0..<S {
                let row = h + (b * S + t) * C, pos = weights.positionEmbedding + t * C
                for i in 0..<C { row[i] += pos[i] }
            }
        }
        layerNorm(out: x, inp: h, weight: weights.preLayerNorm.weight, bias: weights.preLayerNorm.bias, rows: B * S)
    }

    /// One CLIPEncoderLayer on x.
    private func block(_ l: Int, B: Int) {
        let c = config, C = c.hiddenSize, F = c.intermediateSize, R = B * (c.numPatches + 1)
        let w = weights.layers[l]
        layerNorm(out: h, inp: x, weight: w.layerNorm1.weight, bias: w.layerNorm1.bias, rows: R)
        linear(h, w.qProj, out: q, rows: R, n: C, k: C)
        linear(h, w.kProj, out: k, rows: R, n: C, k: C)
        linear(h, w.vProj, out: v, rows: R, n: C, k: C)
        attention(B: B)
        linear(att, w.outProj, out: h, rows: R, n: C, k: C)
        add(x, h, count: R * C)
        layerNorm(out: h, inp: x, weight: w.layerNorm2.weight, bias: w.layerNorm2.bias, rows: R)
        linear(h, w.fc1, out: mlp, rows: R, n: F, k: C)
        activate(mlp, count: R * F)
        linear(mlp, w.fc2, out: h, rows: R, n: C, k: F)
        add(x, h, count: R * C)
    }

    /// out[rows, n] = inp[rows, k] · Wᵀ + bias, W [n, k] as in PyTorch.
    private func linear(_ inp: UnsafeMutablePointer<Float>, _ p: CLIPVisionWeights.Linear, out: UnsafeMutablePointer<Float>,
                        rows: Int, n: Int, k: Int) {
        for r in 0..<rows { (out + r * n).update(from: p.bias, count: n) }
        sgemm(transB: true, m: rows, n: n, k: k, a: inp, b: p.weight, beta: 1, c: out)
    }

    /// nn.LayerNorm over the last dimension: (x − mean) / sqrt(var + eps) · weight + bias, biased variance.
    private func layerNorm(out: UnsafeMutablePointer<Float>, inp: UnsafeMutablePointer<Float>,
                           weight: UnsafeMutablePointer<Float>, bias: UnsafeMutablePointer<Float>, rows: Int) {
        let C = config.hiddenSize
        Parallel.rows(rows, costPerItem: 4 * C, context: (out, inp, weight, bias, C, config.layerNormEps)) { ctx, lo, hi in
            let (out, inp, w, b, C, eps) = ctx
            for r in lo..<hi {
                let xr = inp + r * C, yr = out + r * C
                var mean: Float = 0
                for i in 0..<C { mean += xr[i] }
                mean /= Float(C)
                var variance: Float = 0
                for i in 0..<C { let d = xr[i] - mean; variance += d * d }
                let rstd = 1 / (variance / Float(C) + eps).squareRoot()
                for i in 0..<C { yr[i] = (xr[i] - mean) * rstd * w[i] + b[i] }
            }
        }
    }

    private func add(_ y: UnsafeMutablePointer<Float>, _ d: UnsafeMutablePointer<Float>, count: Int) {
        Parallel.rows(count, context: (y, d)) { ctx, lo, hi in
            let (y, d) = ctx
            for i in lo..<hi { y[i] += d[i] }
        }
    }

    /// quick_gelu: z·σ(1.702z);  gelu: z·½(1 + erf(z/√2)).
    private func activate(_ y: UnsafeMutablePointer<Float>, count: Int) {
        let quick = config.hiddenAct == "quick_gelu"
        Parallel.rows(count, costPerItem: 8, context: (y, quick)) { ctx, lo, hi in
            let (y, quick) = ctx
            if quick {
                for i in lo..<hi { let z = y[i]; y[i] = z * (1 / (1 + expf(-1.702 * z))) }
            } else {
                for i in lo..<hi { let z = y[i]; y[i] = 0.5 * z * (1 + erff(z * 0.70710678118654752)) }
            }
        }
    }

    /// Full (unmasked) attention per (image, head): scores[S, S] = q·kᵀ/√D (one sgemm), softmax per row in
    /// Float, att[S, D] = scores · v (one sgemm); rows of q, k, v, att have stride C = H·D.
    private func attention(B: Int) {
        let c = config, H = c.numAttentionHeads, D = c.headDim, S = c.numPatches + 1, C = c.hiddenSize
        let scale = 1 / Float(D).squareRoot()
        if scoreWorkers < Parallel.threads {   // one S×S block per worker, not per (image, head)
            scores?.deallocate()
            scores = .allocate(capacity: Parallel.threads * S * S)
            scoreWorkers = Parallel.threads
        }
        Parallel.chunks(B * H, costPerItem: S * S * D * 4, context: (q!, k!, v!, att!, scores!, H, D, S, C, scale)) { ctx, worker, lo, hi in
            let (q, k, v, att, scores, H, D, S, C, scale) = ctx
            let s = scores + worker * S * S
            for bh in lo..<hi {
                let b = bh / H, hd = bh % H, off = b * S * C + hd * D
                sgemm(transB: true, m: S, n: S, k: D, alpha: scale, a: q + off, lda: C, b: k + off, ldb: C, c: s, ldc: S)
                for t in 0..<S { softmaxInPlace(s + t * S, valid: S, count: S) }
                sgemm(m: S, n: D, k: S, a: s, lda: S, b: v + off, ldb: C, c: att + off, ldc: C)
            }
        }
    }
}
