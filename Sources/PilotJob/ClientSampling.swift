import PilotCore
import PilotData

/// Which clients take part in a round (Flower's `fraction_fit` / `min_fit_clients`): a seeded
/// sample of max(⌊fraction·K⌋, minClients) clients, capped at K, drawn afresh every round from
/// (seed, round) alone, so a resumed run draws the same clients and nothing needs saving. The
/// sample is returned in client order. With fraction 1 every client takes part and no random
/// number is drawn.
///
/// The same rule with a different stream picks the clients evaluated in a round (`eval.fraction`).
public struct ClientSampling: Sendable, Equatable {
    public var fraction: Double
    public var minClients: Int
    public var seed: UInt64

    public init(fraction: Double = 1, minClients: Int = 0, seed: UInt64 = 0) {
        self.fraction = fraction; self.minClients = minClients; self.seed = seed
    }

    public static let everyone = ClientSampling()

    /// The number of clients a round samples out of `k`.
    public func size(of k: Int) -> Int {
        if fraction >= 1 { return k }
        return min(k, max(Int((Double(k) * fraction).rounded(.down)), minClients))
    }

    /// Throws when a round would sample no client, with the fraction that would sample one.
    public func validate(clients k: Int, what: String = "run.fraction") throws {
        guard size(of: k) >= 1 else {
            throw PilotError.invalidArgument("\(what) = \(fraction) of \(k) clients samples 0 clients per round (⌊\(fraction)·\(k)⌋ = 0); raise it to at least \(String(format: "%.4g", 1 / Double(k))) or set run.min_clients to 1 or more")
        }
    }

    /// The clients of round `round` (1-based), in client order. `stream` separates independent uses
    /// of the same seed (training sample, evaluation sample).
    public func sample(round: Int, clients k: Int, stream: UInt64 = 0) -> [Int] {
        let m = size(of: k)
        if m >= k { return Array(0..<k) }
        var mix = SplitMix64(seed: seed &* 0xD1B5_4A32_D192_ED03 &+ UInt64(round) &* 0x9E37_79B9_7F4A_7C15 &+ stream)
        var rng = PilotRNG(seed: mix.next())
        // Partial Fisher–Yates: the first m of a uniformly shuffled 0..<k.
        var order = Array(0..<k)
        for i in 0..<m { order.swapAt(i, i + rng.int(k - i)) }
        return order.prefix(m).sorted()
    }
}
