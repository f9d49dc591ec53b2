import Foundation
import PilotCore

/// SplitMix64: a small, fast generator whose stream depends only on the seed, so that the same
/// seed gives bitwise-identical initial weights on every machine.
public struct SeededRNG: RandomNumberGenerator, Sendable {
    private var core: SplitMix64
    public var state: UInt64 { core.state }
    public init(seed: UInt64) { core = SplitMix64(seed: seed) }

    public mutating func next() -> UInt64 { core.next() }

    /// Uniform in [0, 1) with 53 random bits.
    public mutating func uniform() -> Double { Double(next() >> 11) * 0x1p-53 }

    /// Standard normal (Box–Muller, one value per call).
    public mutating func normal() -> Double {
        let u1 = max(uniform(), 1e-300), u2 = uniform()
        return (-2 * Foundation.log(u1)).squareRoot() * Foundation.cos(2 * Double.pi * u2)
    }
}
