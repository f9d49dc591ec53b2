import Foundation

// Shape letters: N tokens routed, E router outputs (tasks).

/// The CT-MoA router's mixing weights and its two auxiliary losses.
/// - dense: weights = softmax(logits) over all E; top-k: softmax over the k largest logits, 0 elsewhere
///   (ties go to the lower index).
/// - load balance Lb = λb·E·Σᵢ Dᵢ·Rᵢ (Dᵢ: fraction of tokens whose argmax is i, Rᵢ: mean softmax
///   probability of i); D is piecewise constant, so it carries no gradient.
/// - z-loss Lz = λz·mean over tokens of logsumexp(logits)².
public enum RouterLosses {
    /// Fills probs [N,E] (full softmax), weights [N,E] (mixing weights), lse [N], argmax fractions
    /// `fraction` [E]; returns (Lb, Lz) already multiplied by their λ.
    @inlinable
    public static func forward(weights: UnsafeMutablePointer<Float>, probs: UnsafeMutablePointer<Float>,
                               lse: UnsafeMutablePointer<Float>, fraction: UnsafeMutablePointer<Float>,
                               logits: UnsafePointer<Float>, tokens: Int, experts: Int, topK: Int?,
                               lambdaBalance: Float, lambdaZ: Float) -> (balance: Double, z: Double) {
        let E = experts
        fraction.update(repeating: 0, count: E)
        var zsum = 0.0
        for n in 0..<tokens {
            let l = logits + n * E, p = probs + n * E, w = weights + n * E
            var mx = -Float.infinity, arg = 0
            for i in 0..<E where l[i] > mx { mx = l[i]; arg = i }
            var s: Float = 0
            for i in 0..<E { let e = Foundation.exp(l[i] - mx); p[i] = e; s += e }
            for i in 0..<E { p[i] /= s }
            let ls = mx + Foundation.log(s)
            lse[n] = ls
            zsum += Double(ls) * Double(ls)
            fraction[arg] += 1
            if let k = topK, k < E {
                // select the k largest (stable: lower index wins ties), renormalise over them
                for i in 0..<E { w[i] = 0 }
                var chosenSum: Float = 0
                for _ in 0..<k {
                    var best = -1
                    for i in 0..<E where w[i] == 0 && (best < 0 || l[i] > l[best]) { best = i }
                    w[best] = p[best]
                    chosenSum += p[best]
                }
                for i in 0..<E { w[i] /= chosenSum }
            } else {
                for i in 0..<E { w[i] = p[i] }
            }
        }
        var lb = 0.0
        for i in 0..<E {
            fraction[i] /= Float(tokens)
            var r = 0.0
            for n in 0..<tokens { r += Double(probs[n * E + i]) }
            lb += Double(fraction[i]) * r / Double(tokens)
        }
        return (Double(lambdaBalance) * Double(E) * lb, Double(lambdaZ) * zsum / Double(tokens))
    }

    /// dlogits = ∂/∂logits of (Σ dweights⊙weights + Lb + Lz). Writes dlogits [N,E].
    @inlinable
    public static func backward(dlogits: UnsafeMutablePointer<Float>, dweights: UnsafePointer<Float>,
                                weights: UnsafePointer<Float>, probs: UnsafePointer<Float>,
                                lse: UnsafePointer<Float>, fraction: UnsafePointer<Float>,
                                tokens: Int, experts: Int, topK: Int?,
                                lambdaBalance: Float, lambdaZ: Float) {
        let E = experts
        let dense = topK.map { $0 >= E } ?? true
        let cb = lambdaBalance * Float(E) / Float(tokens)
        let cz = lambdaZ * 2 / Float(tokens)
        for n in 0..<tokens {
            let p = probs + n * E, w = weights + n * E, dw = dweights + n * E, dl = dlogits + n * E
            // gradient w.r.t. the full softmax probabilities: load balance (+ mixing when dense)
            var dot: Float = 0
            for i in 0..<E {
                let g = cb * fraction[i] + (dense ? dw[i] : 0)
                dot += g * p[i]
            }
            for i in 0..<E {
                let g = cb * fraction[i] + (dense ? dw[i] : 0)
                dl[i] = p[i] * (g - dot) + cz * lse[n] * p[i]
            }
            if !dense {
                // renormalised top-k weights: softmax restricted to the chosen set (w > 0)
                var d2: Float = 0
                for i in 0..<E where w[i] > 0 { d2 += w[i] * dw[i] }
                for i in 0..<E where w[i] > 0 { dl[i] += w[i] * (dw[i] - d2) }
            }
        }
    }
}
