// Vectorised float32 exp and the loops built on it (softmax rows, sigmoid, tanh-GELU).
// exp uses the Cephes expf scheme: n = round(x·log2 e), r = x − n·ln 2 (two-part constant),
// a degree-6 polynomial for eʳ on [−ln2/2, ln2/2], then 2ⁿ through the exponent bits. Inputs are
// clamped to [−87, 88] (so results stay normal and finite). Relative error ≤ 2 ulp over that range,
// checked against Foundation.exp in PilotTensorTests.

public typealias Float8 = SIMD8<Float>

public enum VectorMath {
    @inlinable @inline(__always)
    public static func load(_ p: UnsafePointer<Float>) -> Float8 {
        UnsafeRawPointer(p).loadUnaligned(as: Float8.self)
    }

    @inlinable @inline(__always)
    public static func store(_ v: Float8, _ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: Float8.self)
    }

    /// eˣ lane by lane.
    @inlinable @inline(__always)
    public static func exp(_ x0: Float8) -> Float8 {
        // a select per bound, not `clamped` (the stdlib's pointwiseMin/Max are unspecialised calls, ≈3% of a step)
        let lo = Float8(repeating: -87), hi = Float8(repeating: 88)
        let x = x0.replacing(with: lo, where: x0 .< lo).replacing(with: hi, where: x0 .> hi)
        // round to nearest through the 1.5·2²³ trick (no SSE4.1 rounding instruction needed)
        let magic = Float8(repeating: 12_582_912)
        let t = x * 1.442_695_040_888_963_4 + magic
        let n = t - magic
        let r = x - n * 0.693_359_375 - n * -2.121_944_4e-4
        var p = Float8(repeating: 1.987_569_150_0e-4)
        p = p * r + 1.398_199_950_7e-3
        p = p * r + 8.333_451_907_3e-3
        p = p * r + 4.166_579_589_4e-2
        p = p * r + 1.666_666_545_9e-1
        p = p * r + 5.000_000_120_1e-1
        let e = p * (r * r) + r + 1
        // 2ⁿ: the integer n sits in t's low mantissa bits (t = 1.5·2²³ + n)
        let ni = unsafeBitCast(t, to: SIMD8<Int32>.self) &- SIMD8<Int32>(repeating: 0x4B40_0000)
        let scale = unsafeBitCast((ni &+ 127) &<< 23, to: Float8.self)
        return e * scale
    }

    /// eˣ for one value, by the same polynomial (so scalar tails match the vector lanes).
    @inlinable @inline(__always)
    public static func exp(_ x: Float) -> Float { exp(Float8(repeating: x))[0] }

    /// σ(x) = 1/(1 + e⁻ˣ) lane by lane.
    @inlinable @inline(__always)
    public static func sigmoid(_ x: Float8) -> Float8 { 1 / (1 + exp(-x)) }

    /// y[i] = exp(x[i] − shift) for i < count; returns Σ y (8 lane sums, then the lanes in order).
    /// y may alias x.
    @inlinable
    public static func expShifted(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, count: Int, shift: Float) -> Float {
        var acc = Float8(repeating: 0)
        let sv = Float8(repeating: shift)
        var i = 0
        while i + 8 <= count {
            let e = exp(load(x + i) - sv)
            store(e, y + i)
            acc += e
            i += 8
        }
        if i < count {
            var v = Float8(repeating: 0)
            for j in 0..<(count - i) { v[j] = x[i + j] }
            let e = exp(v - sv)
            for j in 0..<(count - i) { y[i + j] = e[j]; acc[j] += e[j] }
        }
        return acc.sum()
    }

    /// Maximum of x[0..<count] (count ≥ 1).
    @inlinable
    public static func max(_ x: UnsafePointer<Float>, count: Int) -> Float {
        var m = Float8(repeating: -.infinity)
        var i = 0
        while i + 8 <= count { let v = load(x + i); m = m.replacing(with: v, where: v .> m); i += 8 }
        var r = m.max()
        while i < count { r = Swift.max(r, x[i]); i += 1 }
        return r
    }

    /// Multiplies x[0..<count] by s in place.
    @inlinable
    public static func scale(_ x: UnsafeMutablePointer<Float>, count: Int, by s: Float) {
        var i = 0
        while i + 8 <= count { store(load(x + i) * s, x + i); i += 8 }
        while i < count { x[i] *= s; i += 1 }
    }
}
