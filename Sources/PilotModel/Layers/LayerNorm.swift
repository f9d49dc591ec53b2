import PilotTensor

// Shape letters: N rows, C width.

/// LayerNorm (ViT): y = (x − μ)·rstd·w + b. The forward pass saves μ and rstd [N].
public enum LayerNorm {
    @inlinable
    public static func forward(y: UnsafeMutablePointer<Float>, mean: UnsafeMutablePointer<Float>,
                               rstd: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>,
                               weight: UnsafePointer<Float>, bias: UnsafePointer<Float>,
                               rows: Int, width: Int, eps: Float) {
        for n in 0..<rows {
            let xr = x + n * width, yr = y + n * width
            var s: Float = 0
            for c in 0..<width { s += xr[c] }
            let mu = s / Float(width)
            var v: Float = 0
            for c in 0..<width { let d = xr[c] - mu; v += d * d }
            let r = 1 / (v / Float(width) + eps).squareRoot()
            mean[n] = mu; rstd[n] = r
            for c in 0..<width { yr[c] = (xr[c] - mu) * r * weight[c] + bias[c] }
        }
    }

    /// dx += rstd·(g − mean(g) − x̂·mean(g⊙x̂)) with g = dy⊙w; dweight += Σ dy⊙x̂; dbias += Σ dy.
    @inlinable
    public static func backward(dx: UnsafeMutablePointer<Float>?, dweight: UnsafeMutablePointer<Float>?,
                                dbias: UnsafeMutablePointer<Float>?, dy: UnsafePointer<Float>,
                                x: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                mean: UnsafePointer<Float>, rstd: UnsafePointer<Float>, rows: Int, width: Int) {
        for n in 0..<rows {
            let xr = x + n * width, dyr = dy + n * width
            let mu = mean[n], r = rstd[n]
            var gm: Float = 0, gx: Float = 0
            for c in 0..<width {
                let g = dyr[c] * weight[c]
                gm += g
                gx += g * (xr[c] - mu) * r
            }
            gm /= Float(width); gx /= Float(width)
            if let dx {
                let dxr = dx + n * width
                for c in 0..<width {
                    let xh = (xr[c] - mu) * r
                    dxr[c] += r * (dyr[c] * weight[c] - gm - xh * gx)
                }
            }
            if let dweight { for c in 0..<width { dweight[c] += dyr[c] * (xr[c] - mu) * r } }
            if let dbias { for c in 0..<width { dbias[c] += dyr[c] } }
        }
    }
}
