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
        Parallel.rows(rows, costPerItem: width * 8) { lo, hi in
            for n in lo..<hi {
                let gr = g + n * ldg, ur = u + n * ldu, ar = act + n * width, sr = sigmoid + n * width
                for f in 0..<width {
                    let x = gr[f]
                    let s = 1 / (1 + Foundation.exp(-x))
                    sr[f] = s
                    ar[f] = x * s * ur[f]
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
        Parallel.rows(rows, costPerItem: width * 2) { lo, hi in
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
    @inlinable
    public static func forward(y: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>, count: Int) {
        Parallel.rows(count, costPerItem: 8) { lo, hi in
            for i in lo..<hi {
                let v = x[i]
                y[i] = 0.5 * v * (1 + Foundation.tanh(k0 * (v + k1 * v * v * v)))
            }
        }
    }

    /// dx (+)= dy · gelu'(x); with `accumulate` false, writes.
    @inlinable
    public static func backward(dx: UnsafeMutablePointer<Float>, dy: UnsafePointer<Float>, x: UnsafePointer<Float>,
                                count: Int, accumulate: Bool = false) {
        Parallel.rows(count, costPerItem: 8) { lo, hi in
            for i in lo..<hi {
                let v = x[i]
                let t = Foundation.tanh(k0 * (v + k1 * v * v * v))
                let dt = (1 - t * t) * k0 * (1 + 3 * k1 * v * v)
                let g = dy[i] * (0.5 * (1 + t) + 0.5 * v * dt)
                dx[i] = accumulate ? dx[i] + g : g
            }
        }
    }
}
