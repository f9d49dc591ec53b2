/// SplitMix64 (Steele, Lea & Flood): the one seed-expansion step of the project. The model's
/// initial weights (`SeededRNG`), the benchmark generator (`PilotRNG`'s seeding) and the round
/// loop's per-client data-order seeds all draw from it, so the same seed gives the same bits on
/// every machine.
public struct SplitMix64: Sendable {
    public var state: UInt64
    public init(seed: UInt64) { state = seed }

    @inlinable
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
