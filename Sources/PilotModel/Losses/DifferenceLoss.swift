import PilotTensor

// Shape letters: B samples, N visual tokens per sample, C feature width.

/// Pilot stage 1's difference loss between the task-adapter features xt and the client-adapter
/// features xs of each sample: Ld_b = ‖x̂tᵀ x̂s‖²_F, computed through the Gram identity
/// ‖AᵀB‖²_F = ⟨AAᵀ, BBᵀ⟩_F so that only N×N matrices are formed.
/// `.rowL2Mean` (default): rows L2-normalised and the result divided by C² (a mean over the C×C
/// entries of x̂tᵀx̂s); `.rawFrobenius`: neither. The loss is the mean over samples.
public enum DifferenceLoss {
    public enum Normalization: String, Codable, Sendable { case rowL2Mean = "row_l2_mean", rawFrobenius = "raw_frobenius" }

    /// Workspace for one call: normalised copies [B·N, C] of both inputs, their row norms [B·N],
    /// and two N×N Gram matrices per sample [B, N, N].
    public struct Workspace {
        public let xt: Tensor, xs: Tensor, normT: Tensor, normS: Tensor, gramT: Tensor, gramS: Tensor
        public init(samples: Int, tokens: Int, width: Int) {
            xt = Tensor(shape: [samples * tokens, width]); xs = Tensor(shape: [samples * tokens, width])
            normT = Tensor(shape: [samples * tokens]); normS = Tensor(shape: [samples * tokens])
            gramT = Tensor(shape: [samples, tokens, tokens]); gramS = Tensor(shape: [samples, tokens, tokens])
        }
    }

    @inlinable
    static func normalize(_ dst: UnsafeMutablePointer<Float>, _ norms: UnsafeMutablePointer<Float>,
                          _ src: UnsafePointer<Float>, rows: Int, width: Int, on: Bool) {
        for r in 0..<rows {
            let s = src + r * width, d = dst + r * width
            if !on { d.update(from: s, count: width); norms[r] = 1; continue }
            var ss: Float = 0
            for c in 0..<width { ss += s[c] * s[c] }
            let nrm = (ss + 1e-12).squareRoot()
            norms[r] = nrm
            let inv = 1 / nrm
            for c in 0..<width { d[c] = s[c] * inv }
        }
    }

    /// Returns Ld (unweighted).
    @inlinable
    public static func forward(ws: Workspace, xt: UnsafePointer<Float>, xs: UnsafePointer<Float>,
                               samples: Int, tokens: Int, width: Int, normalization: Normalization) -> Double {
        let N = tokens, C = width, on = normalization == .rowL2Mean
        for b in 0..<samples {
            normalize(ws.xt.pointer + b * N * C, ws.normT.pointer + b * N, xt + b * N * C, rows: N, width: C, on: on)
            normalize(ws.xs.pointer + b * N * C, ws.normS.pointer + b * N, xs + b * N * C, rows: N, width: C, on: on)
        }
        var total = 0.0
        for b in 0..<samples {
            let gt = ws.gramT.pointer + b * N * N, gs = ws.gramS.pointer + b * N * N
            sgemm(transB: true, m: N, n: N, k: C, a: ws.xt.pointer + b * N * C, b: ws.xt.pointer + b * N * C, c: gt)
            sgemm(transB: true, m: N, n: N, k: C, a: ws.xs.pointer + b * N * C, b: ws.xs.pointer + b * N * C, c: gs)
            var s = 0.0
            for i in 0..<(N * N) { s += Double(gt[i]) * Double(gs[i]) }
            total += s
        }
        let denom = on ? Double(C * C) : 1
        return total / denom / Double(samples)
    }

    /// dxt += scale·∂Ld/∂xt and dxs += scale·∂Ld/∂xs (uses the workspace of the forward call).
    /// ∂⟨GtGs⟩/∂x̂t = 2·Gs·x̂t; through x̂ = x/‖x‖: dx = (dx̂ − x̂(x̂·dx̂))/‖x‖.
    @inlinable
    public static func backward(dxt: UnsafeMutablePointer<Float>, dxs: UnsafeMutablePointer<Float>, ws: Workspace,
                                samples: Int, tokens: Int, width: Int, normalization: Normalization,
                                scale: Float, scratch: UnsafeMutablePointer<Float>) {
        let N = tokens, C = width, on = normalization == .rowL2Mean
        let k = scale * 2 / Float(samples) / (on ? Float(C * C) : 1)
        for b in 0..<samples {
            side(dst: dxt, xhat: ws.xt.pointer, other: ws.gramS.pointer, norms: ws.normT.pointer, b: b)
            side(dst: dxs, xhat: ws.xs.pointer, other: ws.gramT.pointer, norms: ws.normS.pointer, b: b)
        }
        func side(dst: UnsafeMutablePointer<Float>, xhat x0: UnsafeMutablePointer<Float>,
                  other g0: UnsafeMutablePointer<Float>, norms n0: UnsafeMutablePointer<Float>, b: Int) {
            let xhat = x0 + b * N * C, other = g0 + b * N * N, norms = n0 + b * N
            // scratch [N,C] = k · G_other · x̂
            sgemm(m: N, n: C, k: N, alpha: k, a: other, b: xhat, c: scratch)
            for r in 0..<N {
                let g = scratch + r * C, xr = xhat + r * C, d = dst + (b * N + r) * C
                if on {
                    var dot: Float = 0
                    for c in 0..<C { dot += xr[c] * g[c] }
                    let inv = 1 / norms[r]
                    for c in 0..<C { d[c] += (g[c] - xr[c] * dot) * inv }
                } else {
                    for c in 0..<C { d[c] += g[c] }
                }
            }
        }
    }
}
