import PilotTensor

private typealias Names = ConnectorNames

// Shape letters: B images, P visual tokens per image, N = B·P rows, Dv vision width,
// A adapter hidden width, C LM width, E router outputs (tasks).

/// The connector between Hv [N,Dv] and the LM's visual token embeddings [N,C], in the four variants
/// of docs/design.md §3. Every adapter is a 2-layer tanh-GELU MLP with biases (LLaVA's mlp2x_gelu):
/// y = gelu(x·W1 + b1)·W2 + b2.
final class Connector {
    enum Coefficient { case one, router(Int) }

    struct Adapter {
        let prefix: String
        let w1: UnsafeMutablePointer<Float>, b1: UnsafeMutablePointer<Float>
        let w2: UnsafeMutablePointer<Float>, b2: UnsafeMutablePointer<Float>
        let dw1: UnsafeMutablePointer<Float>?, db1: UnsafeMutablePointer<Float>?
        let dw2: UnsafeMutablePointer<Float>?, db2: UnsafeMutablePointer<Float>?
        let coefficient: Coefficient
        let pre: Tensor, act: Tensor, y: Tensor     // [N,A] [N,A] [N,C]
        var trains: Bool { dw1 != nil || dw2 != nil || db1 != nil || db2 != nil }
    }

    let variant: ConnectorVariant
    let options: ConnectorOptions
    let Dv: Int, A: Int, C: Int, P: Int, E: Int
    var adapters: [Adapter] = []
    let out: Tensor                 // [N,C]
    // router (stage 2)
    let router: UnsafeMutablePointer<Float>?, dRouter: UnsafeMutablePointer<Float>?
    let logits: Tensor, probs: Tensor, weights: Tensor, lse: Tensor, fraction: Tensor, dweights: Tensor, dlogits: Tensor
    // stage 1
    let diff: DifferenceLoss.Workspace?
    // backward scratch
    let dy: Tensor, dact: Tensor, dyTask: Tensor, dyClient: Tensor

    static func adapterSpecs(_ prefix: String, _ c: ModelConfig, group: String) -> [ParameterSpec] {
        let Dv = c.visionWidth, A = c.adapterHidden, C = c.width
        return [ParameterSpec(prefix + "fc1/weight", [Dv, A], group: group, init: .normal(std: 1 / Float(Dv).squareRoot())),
                ParameterSpec(prefix + "fc1/bias", [A], group: group, init: .zeros),
                ParameterSpec(prefix + "fc2/weight", [A, C], group: group, init: .normal(std: 1 / Float(A).squareRoot())),
                ParameterSpec(prefix + "fc2/bias", [C], group: group, init: .zeros)]
    }

    /// Adapter prefixes with their groups and mixing coefficients, in computation order.
    static func layout(_ variant: ConnectorVariant, _ o: ConnectorOptions) -> [(prefix: String, group: String, coef: Coefficient)] {
        switch variant {
        case .mlp, .dualLoRA:
            return [(Names.prefix(Names.mlp), Names.mlp, .one)]
        case .pilotStage1:
            return [(Names.prefix(Names.taskAdapter), Names.taskAdapter, .one),
                    (Names.prefix(Names.clientAdapter), Names.clientAdapter, .one)]
        case .pilotStage2:
            var l: [(String, String, Coefficient)] = []
            if o.clientAdapterInStage2 != .dropped { l.append((Names.prefix(Names.clientAdapter), Names.clientAdapter, .one)) }
            let others = (0..<o.numTasks).filter { $0 != o.localTask }
            // declaration order of task adapters follows the task id; the router's output 0 is the local task
            for t in 0..<o.numTasks {
                let r = t == o.localTask ? 0 : 1 + others.firstIndex(of: t)!
                l.append((Names.prefix(Names.taskAdapters(t)), Names.taskAdapters(t), .router(r)))
            }
            for (i, t) in others.enumerated() {
                l.append((Names.prefix(Names.crossTaskAdapter(t)), Names.crossTaskAdapters, .router(1 + i)))
            }
            return l
        }
    }

    static func parameterSpecs(_ variant: ConnectorVariant, _ o: ConnectorOptions, _ c: ModelConfig) -> [ParameterSpec] {
        var s: [ParameterSpec] = []
        for a in layout(variant, o) { s += adapterSpecs(a.prefix, c, group: a.group) }
        if variant == .pilotStage2 {
            s.append(ParameterSpec(Names.routerWeight, [c.visionWidth, o.numTasks], group: Names.router,
                                   init: .normal(std: 1 / Float(c.visionWidth).squareRoot())))
        }
        return s
    }

    init(variant: ConnectorVariant, options: ConnectorOptions, cfg: ModelConfig, store: ParameterStore, maxBatch: Int) {
        self.variant = variant; self.options = options
        Dv = cfg.visionWidth; A = cfg.adapterHidden; C = cfg.width; P = cfg.visualTokens; E = options.numTasks
        let N = maxBatch * P
        for a in Connector.layout(variant, options) {
            let p = a.prefix
            adapters.append(Adapter(prefix: p, w1: store.values(p + "fc1/weight"), b1: store.values(p + "fc1/bias"),
                                    w2: store.values(p + "fc2/weight"), b2: store.values(p + "fc2/bias"),
                                    dw1: store.grad(p + "fc1/weight"), db1: store.grad(p + "fc1/bias"),
                                    dw2: store.grad(p + "fc2/weight"), db2: store.grad(p + "fc2/bias"),
                                    coefficient: a.coef, pre: Tensor(shape: [N, A]), act: Tensor(shape: [N, A]), y: Tensor(shape: [N, C])))
        }
        out = Tensor(shape: [N, C])
        let isMoA = variant == .pilotStage2
        router = isMoA ? store.values(Names.routerWeight) : nil
        dRouter = isMoA ? store.grad(Names.routerWeight) : nil
        let e = isMoA ? E : 1
        logits = Tensor(shape: [N, e]); probs = Tensor(shape: [N, e]); weights = Tensor(shape: [N, e]); lse = Tensor(shape: [N])
        fraction = Tensor(shape: [e]); dweights = Tensor(shape: [N, e]); dlogits = Tensor(shape: [N, e])
        diff = variant == .pilotStage1 ? DifferenceLoss.Workspace(samples: maxBatch, tokens: P, width: C) : nil
        dy = Tensor(shape: [N, C]); dact = Tensor(shape: [N, A])
        dyTask = variant == .pilotStage1 ? Tensor(shape: [N, C]) : Tensor(shape: [1])
        dyClient = variant == .pilotStage1 ? Tensor(shape: [N, C]) : Tensor(shape: [1])
    }

    var trains: Bool { adapters.contains { $0.trains } || dRouter != nil }

    struct Aux { var diff = 0.0, balance = 0.0, z = 0.0 }

    /// out = the variant's mixture of adapter outputs for hv [B·P, Dv]; returns the auxiliary losses
    /// (already multiplied by their λ).
    func forward(hv: UnsafePointer<Float>, batch: Int) -> Aux {
        let N = batch * P
        var aux = Aux()
        hvPointer = UnsafeMutablePointer(mutating: hv)
        for a in adapters {
            Linear.forward(y: a.pre.pointer, x: hv, weight: a.w1, bias: a.b1, rows: N, inFeatures: Dv, outFeatures: A)
            GELU.forward(y: a.act.pointer, x: a.pre.pointer, count: N * A)
            Linear.forward(y: a.y.pointer, x: a.act.pointer, weight: a.w2, bias: a.b2, rows: N, inFeatures: A, outFeatures: C)
        }
        if let router {
            Linear.forward(y: logits.pointer, x: hv, weight: router, bias: nil, rows: N, inFeatures: Dv, outFeatures: E)
            let r = RouterLosses.forward(weights: weights.pointer, probs: probs.pointer, lse: lse.pointer, fraction: fraction.pointer,
                                         logits: logits.pointer, tokens: N, experts: E, topK: options.routerTopK,
                                         lambdaBalance: options.lambdaBalance, lambdaZ: options.lambdaZ)
            aux.balance = r.balance; aux.z = r.z
        }
        // mixture
        let o = out.pointer, C = self.C, E = self.E, w = weights.pointer, adapters = self.adapters
        Parallel.rows(N, costPerItem: C * adapters.count, context: (o, C, E, w, adapters)) { k, lo, hi in
            let (o, C, E, w, adapters) = k
            (o + lo * C).update(repeating: 0, count: (hi - lo) * C)
            for a in adapters {
                let y = a.y.pointer
                switch a.coefficient {
                case .one:
                    for i in (lo * C)..<(hi * C) { o[i] += y[i] }
                case let .router(r):
                    for n in lo..<hi {
                        let c = w[n * E + r], orow = o + n * C, yrow = y + n * C
                        for j in 0..<C { orow[j] += c * yrow[j] }
                    }
                }
            }
        }
        if variant == .pilotStage1, let ws = diff {
            aux.diff = Double(options.lambdaDiff) * DifferenceLoss.forward(ws: ws, xt: adapters[0].y.pointer, xs: adapters[1].y.pointer,
                                                                           samples: batch, tokens: P, width: C,
                                                                           normalization: options.diffNormalization)
        }
        return aux
    }

    /// Backpropagates dout [N,C] into the connector's gradients; adds ∂loss/∂hv into `dhv` when given.
    func backward(dout: UnsafePointer<Float>, batch: Int, dhv: UnsafeMutablePointer<Float>?) {
        let N = batch * P, C = self.C, E = self.E
        if variant == .pilotStage1, let ws = diff {
            dyTask.pointer.update(from: dout, count: N * C)
            dyClient.pointer.update(from: dout, count: N * C)
            DifferenceLoss.backward(dxt: dyTask.pointer, dxs: dyClient.pointer, ws: ws, samples: batch, tokens: P, width: C,
                                    normalization: options.diffNormalization, scale: options.lambdaDiff, scratch: dy.pointer)
        }
        if router != nil {
            // ∂loss/∂(mixing weight r of token n) = Σ over adapters with coefficient r of ⟨dout[n], y[n]⟩
            let dw = dweights.pointer
            dw.update(repeating: 0, count: N * E)
            for a in adapters {
                guard case let .router(r) = a.coefficient else { continue }
                let y = a.y.pointer
                for n in 0..<N {
                    var s: Float = 0
                    let d = dout + n * C, yr = y + n * C
                    for j in 0..<C { s += d[j] * yr[j] }
                    dw[n * E + r] += s
                }
            }
            RouterLosses.backward(dlogits: dlogits.pointer, dweights: dw, weights: weights.pointer, probs: probs.pointer,
                                  lse: lse.pointer, fraction: fraction.pointer, tokens: N, experts: E, topK: options.routerTopK,
                                  lambdaBalance: options.lambdaBalance, lambdaZ: options.lambdaZ)
        }
        for (ai, a) in adapters.enumerated() where a.trains || dhv != nil {
            // dy for this adapter
            let dya: UnsafePointer<Float>
            switch a.coefficient {
            case .one:
                if variant == .pilotStage1 { dya = UnsafePointer(ai == 0 ? dyTask.pointer : dyClient.pointer) } else { dya = dout }
            case let .router(r):
                let w = weights.pointer, d = dy.pointer
                for n in 0..<N {
                    let c = w[n * E + r], s = dout + n * C, t = d + n * C
                    for j in 0..<C { t[j] = c * s[j] }
                }
                dya = UnsafePointer(dy.pointer)
            }
            dact.pointer.update(repeating: 0, count: N * A)
            Linear.backward(dx: dact.pointer, dweight: a.dw2, dbias: a.db2, dy: dya, x: a.act.pointer, weight: a.w2,
                            rows: N, inFeatures: A, outFeatures: C)
            GELU.backward(dx: dact.pointer, dy: dact.pointer, x: a.pre.pointer, count: N * A)
            Linear.backward(dx: dhv, dweight: a.dw1, dbias: a.db1, dy: dact.pointer, x: hv, weight: a.w1,
                            rows: N, inFeatures: Dv, outFeatures: A)
        }
        if let router {
            Linear.backward(dx: dhv, dweight: dRouter, dbias: nil, dy: dlogits.pointer, x: hv, weight: router,
                            rows: N, inFeatures: Dv, outFeatures: E)
        }
    }

    /// The hv of the last forward pass (kept by the caller).
    var hv: UnsafePointer<Float> { UnsafePointer(hvPointer!) }
    var hvPointer: UnsafeMutablePointer<Float>?
}
