import Foundation
import PilotTensor

/// AdamW (Loshchilov & Hutter) with bias correction, decoupled weight decay and optional
/// global-norm gradient clipping, over one flat trainable buffer:
/// p ← p − lr·( m̂/(√v̂ + ε) + wd·p ), m̂ = m/(1−β1ᵗ), v̂ = v/(1−β2ᵗ).
public final class AdamW {
    public struct Parameters: Codable, Sendable, Equatable {
        /// First-moment decay.
        public var beta1: Float = 0.9
        /// Second-moment decay.
        public var beta2: Float = 0.999
        /// Denominator guard.
        public var eps: Float = 1e-8
        /// Decoupled weight decay, multiplied by the learning rate.
        public var weightDecay: Float = 0
        /// Clip the global L2 norm of the gradient to this value; nil or ≤ 0 disables clipping.
        public var maxGradNorm: Float? = nil
        public init(beta1: Float = 0.9, beta2: Float = 0.999, eps: Float = 1e-8, weightDecay: Float = 0, maxGradNorm: Float? = nil) {
            self.beta1 = beta1; self.beta2 = beta2; self.eps = eps; self.weightDecay = weightDecay; self.maxGradNorm = maxGradNorm
        }
    }

    public var parameters: Parameters
    /// First and second moments, same layout as the trainable buffer.
    public let m: Tensor
    public let v: Tensor
    /// Steps taken.
    public private(set) var t: Int = 0

    public init(count: Int, parameters: Parameters = .init()) {
        self.parameters = parameters
        m = Tensor(shape: [count]); v = Tensor(shape: [count])
    }

    /// Resets moments and step count (e.g. when a federated round starts from new weights).
    public func reset() { m.zero(); v.zero(); t = 0 }

    /// Restores optimizer state (for resume).
    public func restore(step: Int) { t = step }

    /// Global L2 norm of `grads`, accumulated in Double in a fixed order.
    public static func globalNorm(_ grads: Tensor) -> Double {
        let g = grads.pointer
        var s = 0.0
        for i in 0..<grads.count { s += Double(g[i]) * Double(g[i]) }
        return s.squareRoot()
    }

    /// One update of `params` from `grads`. Returns the gradient norm before clipping.
    @discardableResult
    public func step(params: Tensor, grads: Tensor, lr: Float) -> Double {
        precondition(params.count == m.count && grads.count == m.count, "AdamW buffer sizes differ")
        t += 1
        let hp = parameters
        var clip: Float = 1
        var norm = 0.0
        if let maxNorm = hp.maxGradNorm, maxNorm > 0 {
            norm = AdamW.globalNorm(grads)
            if norm > Double(maxNorm) { clip = Float(Double(maxNorm) / (norm + 1e-6)) }
        }
        let b1 = hp.beta1, b2 = hp.beta2, eps = hp.eps, wd = hp.weightDecay
        let bc1 = 1 - Float(Foundation.pow(Double(b1), Double(t)))
        let bc2 = 1 - Float(Foundation.pow(Double(b2), Double(t)))
        let p = params.pointer, g = grads.pointer, mp = m.pointer, vp = v.pointer
        let k = (p, g, mp, vp, clip, b1, b2, bc1, bc2, eps, wd, lr)
        Parallel.rows(m.count, costPerItem: 4, context: k) { k, lo, hi in
            let (p, g, mp, vp, clip, b1, b2, bc1, bc2, eps, wd, lr) = k
            for i in lo..<hi {
                let gi = g[i] * clip
                let mi = b1 * mp[i] + (1 - b1) * gi
                let vi = b2 * vp[i] + (1 - b2) * gi * gi
                mp[i] = mi; vp[i] = vi
                p[i] -= lr * ((mi / bc1) / ((vi / bc2).squareRoot() + eps) + wd * p[i])
            }
        }
        return norm
    }
}
