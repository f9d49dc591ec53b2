/// The arithmetic of secure aggregation: reals as fixed-point integers mod 2³² (docs/privacy.md).
///
/// Client k of a group with weights w (n_k for FedAvg, FedProx, FedAdam and Pilot's Eq. 10; 1 for
/// FedDPA's global LoRA) sends, per coordinate,
///
///     q_k = round(clamp(x_k, −B, B) · (w_k / W) · 2^F)   as a two's-complement UInt32, W = Σ_group w,
///
/// with F = `fractionBits` = 24 (resolution 2⁻²⁴ ≈ 6·10⁻⁸) and B = `clipBound` = 127. Pre-multiplying
/// by the share w_k / W (W is public: the server relays every participant's n_k) makes the sum itself
/// the weighted mean: |Σ_k q_k| ≤ B·2^F + K/2 < 2³¹, so the wrapping sum mod 2³² never wraps for
/// fewer than 2²⁴ clients and decodes exactly. Values beyond ±B are clipped and counted.
///
/// `mean` is the plain fixed-point average (no masks): the reference that the masked sum equals bit
/// for bit, because the masks cancel exactly in the integers mod 2³².
public enum FixedPoint {
    public static let fractionBits = 24
    public static let scale = Double(1 << fractionBits)
    public static let clipBound = 127.0

    /// One client's encoded, share-weighted values, and how many were clipped to ±B (a non-finite
    /// value, which a client refuses before encoding, would count as clipped and encode as 0).
    public static func encode(_ x: [Float], share: Double) -> (values: [UInt32], clipped: Int) {
        precondition(share >= 0 && share <= 1, "FixedPoint.encode: the share w_k / W must lie in [0, 1], got \(share)")
        var clipped = 0
        let values = x.map { v -> UInt32 in
            var d = Double(v)
            if !d.isFinite { clipped += 1; d = 0 } else if d > clipBound { clipped += 1; d = clipBound } else if d < -clipBound { clipped += 1; d = -clipBound }
            return UInt32(bitPattern: Int32((d * share * scale).rounded()))
        }
        return (values, clipped)
    }

    /// Σ_k q_k mod 2³², in place (the order does not matter: addition mod 2³² is associative and exact).
    public static func add(_ q: [UInt32], into sum: inout [UInt32]) {
        precondition(q.count == sum.count, "FixedPoint.add: \(q.count) values into a sum of \(sum.count)")
        for i in sum.indices { sum[i] = sum[i] &+ q[i] }
    }

    /// The real values of a sum (two's complement, divided by 2^F), rounded once to Float.
    public static func decode(_ sum: [UInt32]) -> [Float] {
        sum.map { Float(Double(Int32(bitPattern: $0)) / scale) }
    }

    /// The plain fixed-point weighted mean of `vectors` (weights w_k): encode, sum, decode.
    public static func mean(_ vectors: [[Float]], weights: [Double]) -> (mean: [Float], clipped: Int) {
        let total = shareTotal(weights)
        var sum = [UInt32](repeating: 0, count: vectors.first?.count ?? 0)
        var clipped = 0
        for (v, w) in zip(vectors, weights) {
            let e = encode(v, share: w / total)
            add(e.values, into: &sum)
            clipped += e.clipped
        }
        return (decode(sum), clipped)
    }

    /// W = Σ w in the given (client) order, the same on every rank.
    public static func shareTotal(_ weights: [Double]) -> Double {
        weights.reduce(0, +)
    }
}
