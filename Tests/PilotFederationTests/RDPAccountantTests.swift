import Foundation
import PilotFederation
import PilotTestSupport
import Testing

/// RDPAccountant against Opacus itself.
///
/// Golden values: Tests/Fixtures/federation/rdp_golden.json, written by Tests/Fixtures/federation/make_rdp_golden.py
/// from Opacus' RDPAccountant (ε and best order at δ for a grid of q × σ × steps, a δ = 1e-6 point,
/// q = 0, and three mechanisms in sequence) and analysis.rdp.compute_rdp (per-step RDP at every
/// default order).
@Suite("RDP accountant (Opacus' sampled Gaussian mechanism)")
struct RDPAccountantTests {
    struct Step: Decodable { var q: Double; var sigma: Double; var steps: Int }
    struct Point: Decodable { var history: [Step]; var delta: Double; var epsilon: Double; var order: Double }
    struct PerStep: Decodable { var q: Double; var sigma: Double; var rdp: [Double] }
    struct Golden: Decodable {
        var reference: String
        var opacus_version: String
        var orders: [Double]
        var points: [Point]
        var per_step_rdp: [PerStep]
    }

    static let golden: Golden = {
        let url = URL(fileURLWithPath: repositoryRoot + "/Tests/Fixtures/federation/rdp_golden.json")
        return try! JSONDecoder().decode(Golden.self, from: Data(contentsOf: url))
    }()

    static let tolerance = 1e-6

    static func relative(_ a: Double, _ b: Double) -> Double { a == b ? 0 : abs(a - b) / abs(b) }

    static func accountant(_ history: [Step]) -> RDPAccountant {
        var acc = RDPAccountant()
        for s in history { acc.compose(q: s.q, noiseMultiplier: s.sigma, steps: s.steps) }
        return acc
    }

    @Test("default orders are Opacus' DEFAULT_ALPHAS")
    func orders() {
        #expect(RDPAccountant.defaultOrders == Self.golden.orders)
        #expect(RDPAccountant.defaultOrders.count == 151)
    }

    @Test("ε and the best order equal Opacus' on every grid point")
    func epsilonGolden() {
        #expect(Self.golden.reference == "opacus")
        var worst = 0.0
        for p in Self.golden.points {
            let (eps, order) = Self.accountant(p.history).epsilon(delta: p.delta)
            let err = Self.relative(eps, p.epsilon)
            worst = max(worst, err)
            #expect(err <= Self.tolerance, "\(p.history) δ=\(p.delta): ε \(eps) vs Opacus \(p.epsilon)")
            #expect(order == p.order, "\(p.history) δ=\(p.delta): order \(order) vs Opacus \(p.order)")
        }
        print("RDPAccountantTests max relative error, ε vs Opacus \(Self.golden.opacus_version) over \(Self.golden.points.count) points: \(worst)")
    }

    @Test("per-step RDP equals Opacus' compute_rdp at every order")
    func perStepGolden() {
        var worst = 0.0
        for g in Self.golden.per_step_rdp {
            for (alpha, want) in zip(Self.golden.orders, g.rdp) {
                let got = RDPAccountant.rdp(q: g.q, sigma: g.sigma, order: alpha)
                let err = Self.relative(got, want)
                worst = max(worst, err)
                #expect(err <= Self.tolerance, "q=\(g.q) σ=\(g.sigma) α=\(alpha): \(got) vs Opacus \(want)")
            }
        }
        print("RDPAccountantTests max relative error, per-step RDP vs Opacus over \(Self.golden.per_step_rdp.count * Self.golden.orders.count) values: \(worst)")
    }

    @Test("composing in two calls equals one call, bit for bit")
    func split() {
        var once = RDPAccountant(), twice = RDPAccountant()
        once.compose(q: 0.05, noiseMultiplier: 1.1, steps: 100)
        twice.compose(q: 0.05, noiseMultiplier: 1.1, steps: 37)
        twice.compose(q: 0.05, noiseMultiplier: 1.1, steps: 63)
        #expect(once == twice)
        #expect(once.epsilon(delta: 1e-5).epsilon.bitPattern == twice.epsilon(delta: 1e-5).epsilon.bitPattern)
        // zero steps change nothing
        twice.compose(q: 0.3, noiseMultiplier: 0, steps: 0)
        #expect(once == twice)
    }

    @Test("ε grows with steps and falls with σ")
    func monotone() {
        for q in [0.01, 0.1, 0.5, 1.0] {
            for sigma in [0.5, 1.0, 2.0, 5.0] {
                let eps = [1, 10, 100, 1000].map { n in Self.accountant([Step(q: q, sigma: sigma, steps: n)]).epsilon(delta: 1e-5).epsilon }
                #expect(zip(eps, eps.dropFirst()).allSatisfy { $0 < $1 }, "q=\(q) σ=\(sigma): \(eps)")
            }
            let bySigma = [0.5, 0.8, 1.0, 2.0, 5.0].map { s in Self.accountant([Step(q: q, sigma: s, steps: 100)]).epsilon(delta: 1e-5).epsilon }
            #expect(zip(bySigma, bySigma.dropFirst()).allSatisfy { $0 > $1 }, "q=\(q): \(bySigma)")
        }
    }

    @Test("edges: q = 1 is the plain Gaussian, q = 0 costs nothing, σ = 0 is infinite, nothing composed is (0, 0)")
    func edges() {
        var plain = RDPAccountant()
        plain.compose(q: 1, noiseMultiplier: 2, steps: 3)
        #expect(plain.rdp == RDPAccountant.defaultOrders.map { $0 / 8 * 3 })
        var free = RDPAccountant()
        free.compose(q: 0, noiseMultiplier: 0, steps: 10)
        #expect(free.rdp.allSatisfy { $0 == 0 })
        var open = RDPAccountant()
        open.compose(q: 0.1, noiseMultiplier: 0, steps: 1)
        #expect(open.epsilon(delta: 1e-5).epsilon == .infinity)
        let empty = RDPAccountant().epsilon(delta: 1e-5)
        #expect(empty.epsilon == 0 && empty.order == 0)
        // custom orders are honoured
        var few = RDPAccountant(orders: [2, 8, 32])
        few.compose(q: 0.01, noiseMultiplier: 1, steps: 1000)
        #expect([2, 8, 32].contains(few.epsilon(delta: 1e-5).order))
    }
}
