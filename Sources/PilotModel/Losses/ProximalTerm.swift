import PilotTensor

/// FedProx's proximal term (Li et al., 2020) over the trainable buffer w:
/// L_prox = (μ/2)·‖w − w_global‖², ∂L_prox/∂w = μ·(w − w_global).
/// `anchor` is w_global, the model the client received at the start of the round.
public struct ProximalTerm {
    public let mu: Float
    /// w_global, laid out like the trainable buffer.
    public let anchor: Tensor

    public init(mu: Float, anchor: Tensor) {
        self.mu = mu; self.anchor = anchor
    }

    /// (μ/2)·‖w − anchor‖², summed in Double in index order.
    public func forward(weights w: Tensor) -> Double {
        precondition(w.count == anchor.count, "proximal term: \(w.count) weights, anchor has \(anchor.count)")
        let p = w.pointer, a = anchor.pointer
        var s = 0.0
        for i in 0..<w.count {
            let d = Double(p[i]) - Double(a[i])
            s += d * d
        }
        return 0.5 * Double(mu) * s
    }

    /// grads += μ·(w − anchor).
    public func backward(weights w: Tensor, grads: Tensor) {
        precondition(w.count == anchor.count && grads.count == w.count, "proximal term: buffer sizes differ")
        let p = w.pointer, a = anchor.pointer, g = grads.pointer, mu = self.mu
        for i in 0..<w.count { g[i] += mu * (p[i] - a[i]) }
    }
}
