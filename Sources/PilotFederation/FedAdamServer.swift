import Foundation
import PilotCore
import PilotJob
import PilotTensor

/// The server optimizer of FedAdam (Reddi et al., 2021, Alg. 2), on the pseudo-gradient
/// Δ = Σ_k w_k·x_k − x (the clients' weighted mean minus the current global model):
///
///     m ← β1·m + (1−β1)·Δ        v ← β2·v + (1−β2)·Δ²        x ← x + η_t·m/(√v + τ)
///
/// with η_t = η in the paper's form (default), or η·√(1−β2^(t+1))/(1−β1^(t+1)) in Flower's
/// bias-corrected form (flwr 1.41 `FedAdam.aggregate_fit`, exponent t+1 with t the 1-based round).
/// Element-wise arithmetic is in Double; m and v are stored as Float (they are checkpointed).
public struct FedAdamServer: Equatable, Sendable {
    public struct Hyper: Equatable, Sendable {
        public var eta: Double = 1e-2
        public var beta1: Double = 0.9
        public var beta2: Double = 0.99
        public var tau: Double = 1e-3
        /// Flower's bias-corrected step instead of the paper's.
        public var biasCorrected = false
        public init() {}
    }

    public let hyper: Hyper
    public private(set) var m: [Float] = []
    public private(set) var v: [Float] = []
    /// Server rounds taken.
    public private(set) var t = 0

    public init(hyper: Hyper) { self.hyper = hyper }

    /// The step size of round `t` (1-based).
    public func stepSize(round t: Int) -> Double {
        guard hyper.biasCorrected else { return hyper.eta }
        let e = Double(t + 1)
        return hyper.eta * (1 - pow(hyper.beta2, e)).squareRoot() / (1 - pow(hyper.beta1, e))
    }

    /// One server round: takes Δ and returns the update u, so that the new global model is x + u.
    public mutating func update(delta: [Float]) throws -> [Float] {
        if m.isEmpty { m = [Float](repeating: 0, count: delta.count); v = m }
        guard delta.count == m.count else {
            throw PilotError.invalidArgument("FedAdam: pseudo-gradient of \(delta.count) values, the server state has \(m.count)")
        }
        t += 1
        let b1 = hyper.beta1, b2 = hyper.beta2, tau = hyper.tau, lr = stepSize(round: t)
        var u = [Float](repeating: 0, count: delta.count)
        for i in delta.indices {
            let d = Double(delta[i])
            let mi = b1 * Double(m[i]) + (1 - b1) * d
            let vi = b2 * Double(v[i]) + (1 - b2) * d * d
            m[i] = Float(mi); v[i] = Float(vi)
            u[i] = Float(lr * mi / (vi.squareRoot() + tau))
        }
        return u
    }

    /// Checkpointed state: m, v and t (t as a one-element vector).
    public var state: NamedTensors {
        m.isEmpty ? try! NamedTensors(names: ["t"], counts: [1], values: [Float(t)])
            : try! NamedTensors(names: ["m", "v", "t"], counts: [m.count, v.count, 1], values: m + v + [Float(t)])
    }

    public mutating func restore(_ state: NamedTensors) throws {
        guard let tv = state["t"], tv.count == 1, let t0 = tv.first, t0 >= 0, t0 == t0.rounded() else {
            throw PilotError.message("FedAdam server state has no valid round counter 't'; the checkpoint is not a fedadam checkpoint")
        }
        t = Int(t0)
        m = state["m"].map(Array.init) ?? []; v = state["v"].map(Array.init) ?? []
        guard m.count == v.count else { throw PilotError.message("FedAdam server state: m has \(m.count) values, v has \(v.count)") }
    }
}
