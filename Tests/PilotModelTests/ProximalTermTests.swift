import PilotModel
import PilotTensor
import Testing

/// FedProx's proximal term: value, gradient by finite differences, and its place in the model's step.
@Suite("FedProx proximal term")
struct ProximalTermTests {
    @Test func valueIsHalfMuTimesSquaredDistance() {
        let w = Tensor(shape: [3]), a = Tensor(shape: [3])
        for (i, (x, y)) in [(1.0, 0.5), (-2.0, 0.0), (0.25, 0.25)].enumerated() { w.pointer[i] = Float(x); a.pointer[i] = Float(y) }
        // by hand: (0.5² + 2² + 0) · 0.3 / 2 = 4.25 · 0.15
        #expect(abs(ProximalTerm(mu: 0.3, anchor: a).forward(weights: w) - 4.25 * 0.15) < 1e-7)
    }

    @Test func gradientMatchesFiniteDifferences() {
        var rng = SeededRNG(seed: 17)
        let w = randomTensor([40], &rng), a = randomTensor([40], &rng)
        let term = ProximalTerm(mu: 0.7, anchor: a)
        let g = Tensor(shape: [40])
        for i in 0..<g.count { g.pointer[i] = 0.5 }              // backward adds into what is there
        term.backward(weights: w, grads: g)
        for i in 0..<g.count { g.pointer[i] -= 0.5 }
        gradCheck([("w", w, g)], h: 1e-2, tol: 1e-4) { term.forward(weights: w) }
    }

    @Test func modelStepAddsTheTermToLossAndGradient() throws {
        let c = tinyConfig()
        let batch = tinyBatch(c, pixels: false)
        let m = try MLLM(config: c, variant: .mlp, maxBatch: 2, seed: 3)
        let plain = try m.forwardBackward(batch)
        let plainGrads = m.parameters.gradients.values
        var rng = SeededRNG(seed: 4)
        let anchor = m.parameters.trainable.copy()
        for i in 0..<anchor.count { anchor.pointer[i] += Float(rng.normal()) * 0.05 }
        m.penalty = ProximalTerm(mu: 2, anchor: anchor)
        let withProx = try m.forwardBackward(batch)
        #expect(withProx.ce == plain.ce)
        #expect(withProx.penalty > 0 && abs(withProx.total - (plain.total + withProx.penalty)) < 1e-12)
        let w = m.parameters.trainable.pointer, g = m.parameters.gradients.pointer
        var worst: Float = 0
        for i in 0..<anchor.count { worst = max(worst, abs(g[i] - (plainGrads[i] + 2 * (w[i] - anchor.pointer[i])))) }
        #expect(worst == 0)
        // and the whole model, proximal term included, against finite differences
        var items: [(String, Tensor, Tensor)] = []
        for grp in m.parameters.trainableGroups {
            items.append((grp.name, try m.parameters.view(group: grp.name), try m.parameters.gradientView(group: grp.name)))
        }
        gradCheck(items, h: 1e-2, tol: 2e-2) { (try? m.loss(batch).total) ?? .nan }
    }
}
