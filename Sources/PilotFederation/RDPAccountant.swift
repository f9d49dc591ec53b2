import Foundation

/// Rényi-DP accounting for the Poisson-subsampled Gaussian mechanism (Mironov, Talwar & Zhang
/// 2019, "Rényi Differential Privacy of the Sampled Gaussian Mechanism", §3.3), as Opacus 1.6
/// computes it (`opacus/accountants/analysis/rdp.py` and `accountants/rdp.py`): the RDP of one
/// step at each order α, times the steps, summed over mechanisms, then converted to (ε, δ) at the
/// best order (Balle et al. 2020, Theorem 21).
///
/// Everything runs in log space (log-add-exp, log(erfc) with an asymptotic tail), in Double, in a
/// fixed order, so a value does not depend on how steps were batched: consecutive compositions
/// with the same (q, σ) merge into one, as Opacus' accountant merges its history.
public struct RDPAccountant: Sendable, Equatable {
    /// Opacus' `DEFAULT_ALPHAS`: 1.1, 1.2, …, 10.9, then 12, 13, …, 63.
    public static let defaultOrders: [Double] = (1..<100).map { 1 + Double($0) / 10 } + (12..<64).map(Double.init)

    /// The RDP orders α (each > 1) at which the guarantee is tracked.
    public let orders: [Double]
    /// RDP per order of the mechanisms before `latest`, summed in composition order.
    private var earlier: [Double]
    /// The latest mechanism: its parameters, its per-step RDP per order and its step count.
    private var latest: Mechanism?

    struct Mechanism: Sendable, Equatable {
        var q: Double, sigma: Double, steps: Int
        var rdpPerStep: [Double]
    }

    public init(orders: [Double] = RDPAccountant.defaultOrders) {
        precondition(!orders.isEmpty && orders.allSatisfy { $0 > 1 }, "RDPAccountant: orders must be > 1, got \(orders)")
        self.orders = orders
        earlier = [Double](repeating: 0, count: orders.count)
    }

    /// Adds `steps` compositions of the Poisson-subsampled Gaussian mechanism with sampling rate
    /// q ∈ [0, 1] and noise multiplier σ ≥ 0 (noise standard deviation over L2 sensitivity).
    /// q = 0 costs nothing, q = 1 is the plain Gaussian mechanism (α/(2σ²) per step), σ = 0
    /// releases everything (infinite RDP). Zero steps change nothing.
    public mutating func compose(q: Double, noiseMultiplier sigma: Double, steps: Int) {
        precondition(q >= 0 && q <= 1, "RDPAccountant: sampling rate must be in [0, 1], got \(q)")
        precondition(sigma >= 0 && !sigma.isNaN, "RDPAccountant: noise multiplier must be >= 0, got \(sigma)")
        precondition(steps >= 0, "RDPAccountant: steps must be >= 0, got \(steps)")
        guard steps > 0 else { return }
        if var last = latest, last.q == q, last.sigma == sigma {
            last.steps += steps
            latest = last
            return
        }
        if let last = latest {
            for i in earlier.indices { earlier[i] += last.rdpPerStep[i] * Double(last.steps) }
        }
        latest = Mechanism(q: q, sigma: sigma, steps: steps,
                           rdpPerStep: orders.map { Self.rdp(q: q, sigma: sigma, order: $0) })
    }

    /// The total RDP at each order (Opacus' `get_rdp`: Σ over mechanisms of rdp·steps).
    public var rdp: [Double] {
        guard let last = latest else { return earlier }
        return zip(earlier, last.rdpPerStep).map { $0 + $1 * Double(last.steps) }
    }

    /// (ε, best order) at δ ∈ (0, 1): the smallest over the orders of
    /// ε(α) = RDP(α) − (log δ + log α)/(α − 1) + log((α − 1)/α), the first order on ties.
    /// Before any composition it is (0, 0), as Opacus' accountant answers on an empty history.
    public func epsilon(delta: Double) -> (epsilon: Double, order: Double) {
        precondition(delta > 0 && delta < 1, "RDPAccountant: delta must be in (0, 1), got \(delta)")
        guard latest != nil else { return (0, 0) }
        var best: (epsilon: Double, order: Double)?
        for (alpha, r) in zip(orders, rdp) {
            let eps = r - (log(delta) + log(alpha)) / (alpha - 1) + log((alpha - 1) / alpha)
            if !eps.isNaN, best == nil || eps < best!.epsilon { best = (eps, alpha) }
        }
        return best ?? (.infinity, .nan)
    }
}

extension RDPAccountant {
    /// RDP of one step of the sampled Gaussian mechanism at order α (Opacus' `_compute_rdp`).
    public static func rdp(q: Double, sigma: Double, order alpha: Double) -> Double {
        if q == 0 { return 0 }
        if sigma == 0 { return .infinity }
        if q == 1 { return alpha / (2 * sigma * sigma) }
        if alpha.isInfinite { return .infinity }
        let logA = alpha == alpha.rounded() ? logAInteger(q: q, sigma: sigma, alpha: Int(alpha))
                                            : logAFractional(q: q, sigma: sigma, alpha: alpha)
        return logA / (alpha - 1)
    }

    /// log A_α for integer α: log Σ_{i=0}^{α} C(α, i) qⁱ (1 − q)^{α−i} exp((i² − i)/(2σ²)).
    static func logAInteger(q: Double, sigma: Double, alpha: Int) -> Double {
        var logA = -Double.infinity
        for i in 0...alpha {
            let logCoef = log(binomial(Double(alpha), i)) + Double(i) * log(q) + Double(alpha - i) * log(1 - q)
            logA = logAdd(logA, logCoef + Double(i * i - i) / (2 * sigma * sigma))
        }
        return logA
    }

    /// log A_α for fractional α: the two halves of the integral split at
    /// z₀ = σ² log(1/q − 1) + 1/2, each a series over i = 0, 1, … with real binomials C(α, i),
    /// summed until both terms fall below e⁻³⁰ (Opacus' `_compute_log_a_for_frac_alpha`).
    static func logAFractional(q: Double, sigma: Double, alpha: Double) -> Double {
        var logA0 = -Double.infinity, logA1 = -Double.infinity
        let z0 = sigma * sigma * log(1 / q - 1) + 0.5
        let twoSigma2 = 2 * sigma * sigma, sqrt2Sigma = 2.0.squareRoot() * sigma
        var coef = 1.0  // C(α, i), by the recurrence C(α, i) = C(α, i − 1)·(α − i + 1)/i
        var i = 0
        while true {
            if i > 0 { coef *= (alpha - Double(i) + 1) / Double(i) }
            let di = Double(i), j = alpha - di
            let logCoef = log(abs(coef))
            let logT0 = logCoef + di * log(q) + j * log(1 - q)
            let logT1 = logCoef + j * log(q) + di * log(1 - q)
            let logE0 = log(0.5) + logErfc((di - z0) / sqrt2Sigma)
            let logE1 = log(0.5) + logErfc((z0 - j) / sqrt2Sigma)
            let logS0 = logT0 + (di * di - di) / twoSigma2 + logE0
            let logS1 = logT1 + (j * j - j) / twoSigma2 + logE1
            if coef > 0 {
                logA0 = logAdd(logA0, logS0)
                logA1 = logAdd(logA1, logS1)
            } else {
                logA0 = logSub(logA0, logS0)
                logA1 = logSub(logA1, logS1)
            }
            i += 1
            if max(logS0, logS1) < -30 { break }
        }
        return logAdd(logA0, logA1)
    }

    /// log(eˣ + eʸ) without overflow.
    static func logAdd(_ x: Double, _ y: Double) -> Double {
        let a = min(x, y), b = max(x, y)
        if a == -.infinity { return b }
        return log1p(exp(a - b)) + b
    }

    /// log(eˣ − eʸ) for x ≥ y. Opacus raises for x < y; the true value cannot be negative, so that
    /// can only be rounding, and it is taken as 0 (−∞ in log space).
    static func logSub(_ x: Double, _ y: Double) -> Double {
        if x <= y { return -.infinity }
        if y == -.infinity { return x }
        let d = x - y
        // Where expm1 would overflow, log(expm1(d)) = d to double precision (Opacus returns x).
        if d > 700 { return x }
        return log(expm1(d)) + y
    }

    /// log(erfc(x)), accurate where erfc underflows: beyond x = 20 the asymptotic series
    /// erfc(x) = e^{−x²}/(x√π) · Σ (−1)ⁿ (2n − 1)!!/(2x²)ⁿ (eight terms, error below 1e-20).
    static func logErfc(_ x: Double) -> Double {
        if x < 20 { return log(erfc(x)) }
        let t = 1 / (2 * x * x)
        var term = 1.0, sum = 1.0
        for n in 1...8 {
            term *= -Double(2 * n - 1) * t
            sum += term
        }
        return -x * x - log(x) - 0.5 * log(Double.pi) + log(sum)
    }

    /// C(n, k) for real n and integer k ≥ 0, by the product formula (with C(n, k) = C(n, n − k)
    /// for integer n, which keeps the product short and the intermediate values integers).
    static func binomial(_ n: Double, _ k: Int) -> Double {
        var k = k
        if n == n.rounded(), n > 0, Double(k) > n / 2 { k = Int(n) - k }
        if k < 0 { return 0 }
        var c = 1.0
        for j in stride(from: 1, through: k, by: 1) { c = c * (n - Double(k) + Double(j)) / Double(j) }
        return c
    }
}
