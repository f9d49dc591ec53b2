import PilotModel
import PilotTensor
import Testing

// Finite-difference checks in Float: central differences along a random unit direction and along the
// analytic gradient's own direction, compared with ⟨g, v⟩. Tolerance is relative to ‖g‖.

func randomTensor(_ shape: [Int], _ rng: inout SeededRNG, std: Float = 1) -> Tensor {
    let t = Tensor(shape: shape)
    for i in 0..<t.count { t.pointer[i] = Float(rng.normal()) * std }
    return t
}

func dot(_ a: Tensor, _ b: Tensor) -> Double {
    var s = 0.0
    for i in 0..<a.count { s += Double(a.pointer[i]) * Double(b.pointer[i]) }
    return s
}

/// For each (label, parameter, analytic gradient) perturbs the parameter along two unit directions.
func gradCheck(_ items: [(String, Tensor, Tensor)], h: Float = 1e-2, tol: Double = 1e-2,
               sourceLocation: SourceLocation = #_sourceLocation, loss: () -> Double) {
    var rng = SeededRNG(seed: 99)
    for (label, p, g) in items {
        let gnorm = dot(g, g).squareRoot()
        var dirs: [[Float]] = []
        var v = (0..<p.count).map { _ in Float(rng.normal()) }
        var n = Float(v.reduce(0) { $0 + Double($1 * $1) }.squareRoot()); v = v.map { $0 / n }
        dirs.append(v)
        if gnorm > 0 {
            n = Float(gnorm); dirs.append((0..<p.count).map { g.pointer[$0] / n })
        }
        for d in dirs {
            let saved = p.values
            for i in 0..<p.count { p.pointer[i] = saved[i] + h * d[i] }
            let lp = loss()
            for i in 0..<p.count { p.pointer[i] = saved[i] - h * d[i] }
            let lm = loss()
            for i in 0..<p.count { p.pointer[i] = saved[i] }
            let fd = (lp - lm) / Double(2 * h)
            var an = 0.0
            for i in 0..<p.count { an += Double(g.pointer[i]) * Double(d[i]) }
            let err = abs(fd - an)
            #expect(err <= tol * max(gnorm, 1e-3) + 1e-5, "\(label): finite difference \(fd) vs analytic \(an) (‖g‖ = \(gnorm))",
                    sourceLocation: sourceLocation)
        }
    }
}
