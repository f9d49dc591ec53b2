import PilotTensor

// Shape letters: N rows, C width.

/// RMSNorm (Llama): y = x · rstd · w, rstd = 1/√(mean(x²) + ε). The forward pass saves rstd [N].
public enum RMSNorm {
    @inlinable
    public static func forward(y: UnsafeMutablePointer<Float>, rstd: UnsafeMutablePointer<Float>,
                               x: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                               rows: Int, width: Int, eps: Float) {
        Parallel.rows(rows, costPerItem: width, context: (y, rstd, x, weight, width, eps)) { k, lo, hi in
            let (y, rstd, x, weight, width, eps) = k
            for n in lo..<hi {
                let xr = x + n * width, yr = y + n * width
                var ss: Float = 0
                for c in 0..<width { ss += xr[c] * xr[c] }
                let r = 1 / (ss / Float(width) + eps).squareRoot()
                rstd[n] = r
                for c in 0..<width { yr[c] = xr[c] * r * weight[c] }
            }
        }
    }

    /// dx += rstd·(dy⊙w − x̂·mean(dy⊙w⊙x̂)), x̂ = x·rstd; dweight += Σₙ dy⊙x̂ (skipped when nil).
    @inlinable
    public static func backward(dx: UnsafeMutablePointer<Float>, dweight: UnsafeMutablePointer<Float>?,
                                dy: UnsafePointer<Float>, x: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                rstd: UnsafePointer<Float>, rows: Int, width: Int) {
        Parallel.rows(rows, costPerItem: width, context: (dx, dy, x, weight, rstd, width)) { k, lo, hi in
            let (dx, dy, x, weight, rstd, width) = k
            for n in lo..<hi {
                let xr = x + n * width, dyr = dy + n * width, dxr = dx + n * width
                let r = rstd[n]
                var dot: Float = 0
                for c in 0..<width { dot += dyr[c] * weight[c] * xr[c] }
                let k = dot * r * r / Float(width)
                for c in 0..<width { dxr[c] += r * (dyr[c] * weight[c] - xr[c] * k) }
            }
        }
        if let dweight {
            for n in 0..<rows {
                let xr = x + n * width, dyr = dy + n * width, r = rstd[n]
                for c in 0..<width { dweight[c] += dyr[c] * xr[c] * r }
            }
        }
    }
}
