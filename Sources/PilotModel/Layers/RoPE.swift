import Foundation

// Shape letters: B sequences, T positions, H heads, D head width (even).

/// Rotary position embedding in the Llama/HF "rotate_half" layout: the pair is (i, i + D/2),
/// y_i = x_i·cos − x_{i+D/2}·sin and y_{i+D/2} = x_{i+D/2}·cos + x_i·sin, angle = pos·θ^(−2i/D).
public struct RoPE: Sendable {
    public let headDim: Int
    public let maxPositions: Int
    /// [maxPositions, D/2] tables, computed in Double and rounded once.
    public let cos: [Float]
    public let sin: [Float]

    public init(headDim: Int, maxPositions: Int, theta: Double = 10_000) {
        precondition(headDim % 2 == 0, "RoPE needs an even head width, got \(headDim)")
        self.headDim = headDim
        self.maxPositions = maxPositions
        let half = headDim / 2
        var c = [Float](repeating: 0, count: maxPositions * half), s = c
        for p in 0..<maxPositions {
            for i in 0..<half {
                let inv = 1.0 / Foundation.pow(theta, Double(2 * i) / Double(headDim))
                let a = Double(p) * inv
                c[p * half + i] = Float(Foundation.cos(a))
                s[p * half + i] = Float(Foundation.sin(a))
            }
        }
        cos = c; sin = s
    }

    /// Rotates, in place, the `heads` head vectors of one row at position `pos`. `inverse` applies
    /// the transpose rotation, which is the backward pass.
    @inlinable
    public func apply(row: UnsafeMutablePointer<Float>, heads: Int, pos: Int, inverse: Bool = false) {
        let half = headDim / 2
        cos.withUnsafeBufferPointer { cb in
            sin.withUnsafeBufferPointer { sb in
                let cp = cb.baseAddress! + pos * half, sp = sb.baseAddress! + pos * half
                let sign: Float = inverse ? -1 : 1
                for h in 0..<heads {
                    let x = row + h * headDim
                    for i in 0..<half {
                        let a = x[i], b = x[i + half], c = cp[i], s = sign * sp[i]
                        x[i] = a * c - b * s
                        x[i + half] = b * c + a * s
                    }
                }
            }
        }
    }

    /// Rotates q-like blocks of a [B,T,…] buffer in place: for every row (b,t) the `heads` heads
    /// starting at column `column` with row stride `ld`; position = t.
    @inlinable
    public func apply(_ x: UnsafeMutablePointer<Float>, batch: Int, seqLen: Int, heads: Int,
                      ld: Int, column: Int = 0, inverse: Bool = false) {
        for b in 0..<batch {
            for t in 0..<seqLen {
                apply(row: x + (b * seqLen + t) * ld + column, heads: heads, pos: t, inverse: inverse)
            }
        }
    }
}
