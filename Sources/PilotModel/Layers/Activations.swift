import Foundation
import PilotTensor

// Shape letters: N rows, F hidden width.

/// SwiGLU: act = silu(g)⊙u with silu(g) = g·σ(g) (Llama's MLP). g and u are column blocks
/// of rows with strides `ldg`, `ldu`; the forward pass saves σ(g) [N,F].
public enum SwiGLU {
    @inlinable
    public static func forward(act: UnsafeMutablePointer<Float>, sigmoid: UnsafeMutablePointer<Float>,
                               g: UnsafePointer<Float>, ldg: Int, u: UnsafePointer<Float>, ldu: Int,
                               rows: Int, width: Int) {
        Parallel.rows(rows, costPerItem: width * 8, context: (act, sigmoid, g, ldg, u, ldu, width)) { k, lo, hi in
            let (act, sigmoid, g, ldg, u, ldu, width) = k
            for n in lo..<hi {
                let gr = g + n * ldg, ur = u + n * ldu, ar = act + n * width, sr = sigmoid + n * width
                var f = 0
                while f + 8 <= width {
                    let x = VectorMath.load(gr + f)
                    let s = VectorMath.sigmoid(x)
                    VectorMath.store(s, sr + f)
                    VectorMath.store(x * s * VectorMath.load(ur + f), ar + f)
                    f += 8
                }
                while f < width {
                    let x = gr[f]
                    let s = 1 / (1 + VectorMath.exp(-x))
                    sr[f] = s
                    ar[f] = x * s * ur[f]
                    f += 1
                }
            }
        }
    }

    /// Writes dg = dact⊙u⊙σ(1 + g(1−σ)) and du = dact⊙silu(g).
    @inlinable
    public static func backward(dg: UnsafeMutablePointer<Float>, lddg: Int, du: UnsafeMutablePointer<Float>, lddu: Int,
                                dact: UnsafePointer<Float>, sigmoid: UnsafePointer<Float>,
                                g: UnsafePointer<Float>, ldg: Int, u: UnsafePointer<Float>, ldu: Int,
                                rows: Int, width: Int) {
        let c = (dg, lddg, du, lddu, dact, sigmoid, g, ldg, u, ldu, width)
        Parallel.rows(rows, costPerItem: width * 2, context: c) { c, lo, hi in
            let (dg, lddg, du, lddu, dact, sigmoid, g, ldg, u, ldu, width) = c
            for n in lo..<hi {
                let gr = g + n * ldg, ur = u + n * ldu, dr = dact + n * width, sr = sigmoid + n * width
                let dgr = dg + n * lddg, dur = du + n * lddu
                for f in 0..<width {
                    let x = gr[f], s = sr[f], d = dr[f]
                    dur[f] = d * x * s
                    dgr[f] = d * ur[f] * s * (1 + x * (1 - s))
                }
            }
        }
    }
}

/// The tanh approximation of GELU (GPT-2, LLaVA's mlp2x_gelu, `jax.nn.gelu(approximate=True)`).
public enum GELU {
    public static let k0: Float = 0.7978845608028654   // √(2/π)
    public static let k1: Float = 0.044715

    /// y = 0.5·x·(1 + tanh(√(2/π)(x + 0.044715x³))), elementwise over `count` values (y may alias x only if x is not needed later).
    /// Computed as x·σ(2u), u = √(2/π)(x + 0.044715x³), which is the same function (1 + tanh u = 2σ(2u))
    /// and needs one vectorised exp.
    @inlinable
    public static func forward(y: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>, count: Int) {
        Parallel.rows(count, costPerItem: 8, context: (y, x)) { c, lo, hi in
            let (y, x) = c
            var i = lo
            while i + 8 <= hi {
                let v = VectorMath.load(x + i)
                let u2 = (2 * k0) * (v + k1 * v * v * v)
                VectorMath.store(v * VectorMath.sigmoid(u2), y + i)
                i += 8
            }
            while i < hi {
                let v = x[i]
                let u2 = (2 * k0) * (v + k1 * v * v * v)
                y[i] = v / (1 + VectorMath.exp(-u2))
                i += 1
            }
        }
    }

    /// dx (+)= dy · gelu'(x); with `accumulate` false, writes.
    /// gelu'(x) = σ + 2x·σ(1−σ)·√(2/π)(1 + 3·0.044715x²) with σ = σ(2u) (since tanh u = 2σ − 1).
    @inlinable
    public static func backward(dx: UnsafeMutablePointer<Float>, dy: UnsafePointer<Float>, x: UnsafePointer<Float>,
                                count: Int, accumulate: Bool = false) {
        Parallel.rows(count, costPerItem: 8, context: (dx, dy, x, accumulate)) { c, lo, hi in
            let (dx, dy, x, accumulate) = c
            var i = lo
            while i + 8 <= hi {
                let v = VectorMath.load(x + i)
                let v2 = v * v
                let s = VectorMath.sigmoid((2 * k0) * (v + k1 * v2 * v))
                let d = s + (2 * k0) * v * s * (1 - s) * (1 + (3 * k1) * v2)
                var g = VectorMath.load(dy + i) * d
                if accumulate { g += VectorMath.load(dx + i) }
                VectorMath.store(g, dx + i)
                i += 8
            }
            while i < hi {
                let v = x[i], v2 = v * v
                let s = 1 / (1 + VectorMath.exp(-(2 * k0) * (v + k1 * v2 * v)))
                let d = s + (2 * k0) * v * s * (1 - s) * (1 + (3 * k1) * v2)
                let g = dy[i] * d
                dx[i] = accumulate ? dx[i] + g : g
                i += 1
            }
        }
    }
}
