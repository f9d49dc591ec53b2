import Foundation
import PilotCore
import PilotData

/// Client-level differential privacy, DP-FedAvg style (McMahan et al., 2018): each client's change
/// of what it sends is clipped to L2 norm C before it leaves the client, and the server adds
/// Gaussian noise N(0, (σ·C)²) to every coordinate of every clipped update, seeded by
/// (seed, round, client) so that a run stays bitwise reproducible. The accountant
/// (`RDPAccountant`, the sampled Gaussian mechanism with q = sampled share, σ, one step per
/// round) reports ε at δ after every round. docs/privacy.md says what this does and does not
/// protect.
public enum ClientPrivacy {
    /// The update pulled toward its round-start `reference` so that ‖update − reference‖₂ ≤ C;
    /// returns the new values and the norm before clipping.
    public static func clip(_ values: [Float], reference: [Float], bound c: Double) -> (values: [Float], norm: Double) {
        precondition(values.count == reference.count, "clip: \(values.count) values, \(reference.count) reference values")
        var d2 = 0.0
        for (a, b) in zip(values, reference) { let d = Double(a) - Double(b); d2 += d * d }
        let norm = d2.squareRoot()
        guard norm > c else { return (values, norm) }
        let s = c / norm
        return (zip(values, reference).map { a, b in Float(Double(b) + (Double(a) - Double(b)) * s) }, norm)
    }

    /// `values` plus N(0, std²) per coordinate from a generator seeded by (seed, round, client).
    public static func noised(_ values: [Float], std: Double, seed: UInt64, round: Int, client: Int) -> [Float] {
        guard std > 0 else { return values }
        var mix = SplitMix64(seed: seed &* 0xA24B_AED4_963E_E407 &+ UInt64(round) &* 0x9FB2_1C65_1E98_DF25 &+ UInt64(client) &+ 0xD9E8)
        var rng = PilotRNG(seed: mix.next())
        var out = values
        var i = 0
        // Box–Muller: two normals per pair of uniforms, in index order
        while i < out.count {
            let u1 = max(rng.unit(), Double.leastNonzeroMagnitude), u2 = rng.unit()
            let r = (-2 * log(u1)).squareRoot() * std
            out[i] = Float(Double(out[i]) + r * cos(2 * .pi * u2))
            if i + 1 < out.count { out[i + 1] = Float(Double(out[i + 1]) + r * sin(2 * .pi * u2)) }
            i += 2
        }
        return out
    }

    /// ε after `rounds` rounds that each sampled `sampled` of `clients` clients.
    public static func epsilon(_ dp: DPSettings, sampled: Int, clients: Int, rounds: Int) -> Double {
        var accountant = RDPAccountant()
        accountant.compose(q: Double(sampled) / Double(clients), noiseMultiplier: dp.noiseMultiplier, steps: rounds)
        return accountant.epsilon(delta: dp.delta).epsilon
    }
}
