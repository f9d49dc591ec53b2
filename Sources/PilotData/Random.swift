import PilotCore

/// Seeded pseudo-random numbers for the benchmark generator.
///
/// Generation must give byte-identical files for the same seed on every machine, so the
/// generator never touches Foundation's or the system's random sources: it uses
/// xoshiro256** seeded through SplitMix64, and every draw below is defined in integer or
/// IEEE double arithmetic only. (`SplitMix64` lives in PilotCore.)

/// xoshiro256** (Blackman & Vigna). `fork(_:)` derives independent streams by label, so
/// that adding draws to one part of the generator does not shift the data of another.
public struct PilotRNG: RandomNumberGenerator, Sendable {
    private var s: (UInt64, UInt64, UInt64, UInt64)

    public init(seed: UInt64) {
        var sm = SplitMix64(seed: seed)
        s = (sm.next(), sm.next(), sm.next(), sm.next())
    }

    public mutating func next() -> UInt64 {
        let result = rotl(s.1 &* 5, 7) &* 9
        let t = s.1 << 17
        s.2 ^= s.0
        s.3 ^= s.1
        s.1 ^= s.2
        s.0 ^= s.3
        s.2 ^= t
        s.3 = rotl(s.3, 45)
        return result
    }

    @inline(__always) private func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }

    /// A new generator whose stream depends only on `seed` and `label` (FNV-1a of the label).
    public static func stream(seed: UInt64, _ label: String) -> PilotRNG {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in label.utf8 { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
        var sm = SplitMix64(seed: seed ^ h)
        return PilotRNG(seed: sm.next())
    }

    /// Uniform integer in 0..<n (Lemire's unbiased multiply-shift).
    public mutating func int(_ n: Int) -> Int {
        precondition(n > 0, "PilotRNG.int needs n > 0")
        let bound = UInt64(n)
        var m = next().multipliedFullWidth(by: bound)
        if m.low < bound {
            let t = (0 &- bound) % bound
            while m.low < t { m = next().multipliedFullWidth(by: bound) }
        }
        return Int(m.high)
    }

    /// Uniform integer in the closed range.
    public mutating func int(in range: ClosedRange<Int>) -> Int { range.lowerBound + int(range.count) }

    /// Uniform double in [0, 1) with 53 random bits.
    public mutating func unit() -> Double { Double(next() >> 11) * 0x1.0p-53 }

    public mutating func bool(_ p: Double = 0.5) -> Bool { unit() < p }

    public mutating func pick<T>(_ items: [T]) -> T { items[int(items.count)] }

    /// Fisher–Yates shuffle (deterministic for a given state).
    public mutating func shuffle<T>(_ items: inout [T]) {
        if items.count < 2 { return }
        for i in stride(from: items.count - 1, to: 0, by: -1) {
            let j = int(i + 1)
            if i != j { items.swapAt(i, j) }
        }
    }

    public mutating func shuffled<T>(_ items: [T]) -> [T] { var c = items; shuffle(&c); return c }

    /// Standard normal (Box–Muller; uses log/cos from libm, which are correctly rounded
    /// enough on every platform we target for the integer-valued uses below).
    public mutating func normal() -> Double {
        let u1 = max(unit(), 0x1.0p-53)
        let u2 = unit()
        return (-2 * _log(u1)).squareRoot() * _cos(2 * Double.pi * u2)
    }

    /// Gamma(shape, 1) by Marsaglia–Tsang (with the boost for shape < 1).
    public mutating func gamma(shape: Double) -> Double {
        if shape < 1 {
            let u = max(unit(), 0x1.0p-53)
            return gamma(shape: shape + 1) * _pow(u, 1 / shape)
        }
        let d = shape - 1.0 / 3.0
        let c = 1 / (9 * d).squareRoot()
        while true {
            var x = 0.0, v = 0.0
            repeat { x = normal(); v = 1 + c * x } while v <= 0
            v = v * v * v
            let u = unit()
            if u < 1 - 0.0331 * x * x * x * x { return d * v }
            if _log(max(u, 0x1.0p-53)) < 0.5 * x * x + d * (1 - v + _log(v)) { return d * v }
        }
    }

    /// A draw from a symmetric Dirichlet(alpha) over `k` categories.
    public mutating func dirichlet(alpha: Double, k: Int) -> [Double] {
        var g = (0..<k).map { _ in gamma(shape: alpha) }
        let total = g.reduce(0, +)
        if total <= 0 { return [Double](repeating: 1 / Double(k), count: k) }
        for i in g.indices { g[i] /= total }
        return g
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
@inline(__always) func _log(_ x: Double) -> Double { log(x) }
@inline(__always) func _cos(_ x: Double) -> Double { cos(x) }
@inline(__always) func _pow(_ x: Double, _ y: Double) -> Double { pow(x, y) }
