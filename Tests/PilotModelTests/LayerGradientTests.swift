import Foundation
import PilotModel
import PilotTensor
import Testing

@Suite("Layer gradients (finite differences)")
struct LayerGradientTests {
    @Test func linear() {
        var rng = SeededRNG(seed: 1)
        let N = 5, I = 7, O = 4
        let x = randomTensor([N, I], &rng), w = randomTensor([I, O], &rng), b = randomTensor([O], &rng), dy = randomTensor([N, O], &rng)
        let y = Tensor(shape: [N, O])
        func f() -> Double {
            Linear.forward(y: y.pointer, x: x.pointer, weight: w.pointer, bias: b.pointer, rows: N, inFeatures: I, outFeatures: O)
            return dot(y, dy)
        }
        let dx = Tensor(shape: [N, I]), dw = Tensor(shape: [I, O]), db = Tensor(shape: [O])
        _ = f()
        Linear.backward(dx: dx.pointer, dweight: dw.pointer, dbias: db.pointer, dy: dy.pointer, x: x.pointer, weight: w.pointer,
                        rows: N, inFeatures: I, outFeatures: O)
        gradCheck([("x", x, dx), ("W", w, dw), ("b", b, db)], loss: f)
    }

    @Test func loraLinearAndMergedPath() {
        var rng = SeededRNG(seed: 2)
        let N = 6, I = 8, O = 5, R = 3
        let s: Float = 2
        let x = randomTensor([N, I], &rng), w = randomTensor([I, O], &rng), a = randomTensor([I, R], &rng), bb = randomTensor([R, O], &rng)
        let dy = randomTensor([N, O], &rng)
        let y = Tensor(shape: [N, O]), xa = Tensor(shape: [N, R])
        func f() -> Double {
            LoRALinear.forward(y: y.pointer, xa: xa.pointer, x: x.pointer, weight: w.pointer, loraA: a.pointer, loraB: bb.pointer,
                               scale: s, rows: N, inFeatures: I, outFeatures: O, rank: R)
            return dot(y, dy)
        }
        _ = f()
        let dx = Tensor(shape: [N, I]), da = Tensor(shape: [I, R]), db = Tensor(shape: [R, O]), scratch = Tensor(shape: [N, R])
        LoRALinear.backward(dx: dx.pointer, dA: da.pointer, dB: db.pointer, scratch: scratch.pointer, dy: dy.pointer, x: x.pointer,
                            xa: xa.pointer, weight: w.pointer, loraA: a.pointer, loraB: bb.pointer, scale: s,
                            rows: N, inFeatures: I, outFeatures: O, rank: R)
        gradCheck([("x", x, dx), ("A", a, da), ("B", bb, db)], loss: f)
        // merged: x·(W + sAB) equals the two-path output
        let merged = Tensor(shape: [I, O]), y2 = Tensor(shape: [N, O])
        LoRALinear.merge(into: merged.pointer, weight: w.pointer, loraA: a.pointer, loraB: bb.pointer, scale: s, inFeatures: I, outFeatures: O, rank: R)
        Linear.forward(y: y2.pointer, x: x.pointer, weight: merged.pointer, bias: nil, rows: N, inFeatures: I, outFeatures: O)
        _ = f()
        for i in 0..<y.count { #expect(abs(y[i] - y2[i]) <= 1e-4 * max(1, abs(y[i]))) }
    }

    @Test func embedding() {
        var rng = SeededRNG(seed: 3)
        let V = 6, C = 4, N = 5
        let table = randomTensor([V, C], &rng), dy = randomTensor([N, C], &rng)
        let tokens: [Int32] = [1, 3, 1, 5, 0]
        let out = Tensor(shape: [N, C])
        func f() -> Double {
            tokens.withUnsafeBufferPointer { Embedding.forward(out: out.pointer, tokens: $0.baseAddress!, table: table.pointer, count: N, width: C) }
            return dot(out, dy)
        }
        let dt = Tensor(shape: [V, C])
        tokens.withUnsafeBufferPointer { Embedding.backward(dtable: dt.pointer, dout: dy.pointer, tokens: $0.baseAddress!, count: N, width: C) }
        gradCheck([("table", table, dt)], loss: f)
    }

    @Test func rmsNorm() {
        var rng = SeededRNG(seed: 4)
        let N = 4, C = 9
        let x = randomTensor([N, C], &rng), w = randomTensor([C], &rng), dy = randomTensor([N, C], &rng)
        let y = Tensor(shape: [N, C]), rstd = Tensor(shape: [N])
        func f() -> Double {
            RMSNorm.forward(y: y.pointer, rstd: rstd.pointer, x: x.pointer, weight: w.pointer, rows: N, width: C, eps: 1e-5)
            return dot(y, dy)
        }
        _ = f()
        let dx = Tensor(shape: [N, C]), dw = Tensor(shape: [C])
        RMSNorm.backward(dx: dx.pointer, dweight: dw.pointer, dy: dy.pointer, x: x.pointer, weight: w.pointer, rstd: rstd.pointer, rows: N, width: C)
        gradCheck([("x", x, dx), ("w", w, dw)], loss: f)
    }

    @Test func layerNorm() {
        var rng = SeededRNG(seed: 5)
        let N = 4, C = 9
        let x = randomTensor([N, C], &rng), w = randomTensor([C], &rng), b = randomTensor([C], &rng), dy = randomTensor([N, C], &rng)
        let y = Tensor(shape: [N, C]), mean = Tensor(shape: [N]), rstd = Tensor(shape: [N])
        func f() -> Double {
            LayerNorm.forward(y: y.pointer, mean: mean.pointer, rstd: rstd.pointer, x: x.pointer, weight: w.pointer, bias: b.pointer,
                              rows: N, width: C, eps: 1e-5)
            return dot(y, dy)
        }
        _ = f()
        let dx = Tensor(shape: [N, C]), dw = Tensor(shape: [C]), db = Tensor(shape: [C])
        LayerNorm.backward(dx: dx.pointer, dweight: dw.pointer, dbias: db.pointer, dy: dy.pointer, x: x.pointer, weight: w.pointer,
                           mean: mean.pointer, rstd: rstd.pointer, rows: N, width: C)
        gradCheck([("x", x, dx), ("w", w, dw), ("b", b, db)], loss: f)
    }

    @Test func ropeRotateHalf() {
        var rng = SeededRNG(seed: 6)
        let B = 2, T = 5, H = 2, D = 6
        let rope = RoPE(headDim: D, maxPositions: T)
        let x = randomTensor([B * T, H * D], &rng), dy = randomTensor([B * T, H * D], &rng)
        let y = Tensor(shape: [B * T, H * D])
        func f() -> Double {
            y.pointer.update(from: x.pointer, count: x.count)
            rope.apply(y.pointer, batch: B, seqLen: T, heads: H, ld: H * D)
            return dot(y, dy)
        }
        let dx = dy.copy()
        rope.apply(dx.pointer, batch: B, seqLen: T, heads: H, ld: H * D, inverse: true)
        gradCheck([("x", x, dx)], loss: f)
        // rotate_half layout: position 1, pair (0, D/2) rotated by angle 1 rad (θ^0 = 1)
        let r = Tensor(shape: [D]); r[0] = 1
        rope.apply(row: r.pointer, heads: 1, pos: 1)
        #expect(abs(r[0] - Float(0.5403023)) < 1e-6 && abs(r[D / 2] - Float(0.84147096)) < 1e-6)
    }

    @Test(arguments: [true, false]) func attention(causal: Bool) {
        var rng = SeededRNG(seed: 7)
        let B = 2, T = 5, H = 2, D = 4, C = H * D
        let qkv = randomTensor([B * T, 3 * C], &rng), dy = randomTensor([B * T, C], &rng)
        let lengths: [Int32] = [5, 3]
        let att = Attention(batch: B, seqLen: T, heads: H, headDim: D, causal: causal)
        let o = Tensor(shape: [B * T, C]), probs = Tensor(shape: [B, H, T, T])
        func f() -> Double {
            lengths.withUnsafeBufferPointer {
                att.forward(o: o.pointer, ldo: C, probs: probs.pointer, q: qkv.pointer, k: qkv.pointer + C, v: qkv.pointer + 2 * C,
                            ldqkv: 3 * C, lengths: $0.baseAddress)
            }
            return dot(o, dy)
        }
        _ = f()
        // masking: sequence 1 (length 3) gives zero weight to keys 3 and 4
        for h in 0..<H { for i in 0..<T { for j in 3..<T { #expect(probs[((1 * H + h) * T + i) * T + j] == 0) } } }
        if causal { #expect(probs[0 * T * T + 0 * T + 1] == 0) }
        let dqkv = Tensor(shape: [B * T, 3 * C]), scratch = Tensor(shape: [8, 2 * T, T])
        att.backward(dq: dqkv.pointer, dk: dqkv.pointer + C, dv: dqkv.pointer + 2 * C, lddqkv: 3 * C, dout: dy.pointer, lddo: C,
                     probs: probs.pointer, q: qkv.pointer, k: qkv.pointer + C, v: qkv.pointer + 2 * C, ldqkv: 3 * C, scratch: scratch.pointer)
        gradCheck([("qkv", qkv, dqkv)], loss: f)
    }

    /// Grouped-query attention (2 query heads per key/value head) with P recomputed in the backward
    /// pass instead of stored: same output as storing P, and gradients that match finite differences.
    /// T = 70 spans three query blocks (the last one partial), where causal blocks skip unseen keys and
    /// dK, dV add over blocks; the second sequence's length ends inside the second block.
    @Test(arguments: [true, false], [5, 70]) func groupedQueryAttentionRecomputingProbabilities(causal: Bool, T: Int) {
        var rng = SeededRNG(seed: 8)
        let B = 2, H = 4, KV = 2, D = 4, C = H * D, W = C + 2 * KV * D
        let qkv = randomTensor([B * T, W], &rng), dy = randomTensor([B * T, C], &rng)
        let lengths: [Int32] = [Int32(T), Int32(T * 3 / 5)]
        let att = Attention(batch: B, seqLen: T, heads: H, headDim: D, kvHeads: KV, causal: causal)
        let o = Tensor(shape: [B * T, C]), o2 = Tensor(shape: [B * T, C]), probs = Tensor(shape: [B, H, T, T])
        let scratch = Tensor(shape: [8, att.scratchPerWorker])
        func f() -> Double {
            lengths.withUnsafeBufferPointer {
                att.forward(o: o.pointer, ldo: C, probs: nil, q: qkv.pointer, k: qkv.pointer + C, v: qkv.pointer + C + KV * D,
                            ldqkv: W, lengths: $0.baseAddress, scratch: scratch.pointer)
            }
            return dot(o, dy)
        }
        _ = f()
        lengths.withUnsafeBufferPointer {
            att.forward(o: o2.pointer, ldo: C, probs: probs.pointer, q: qkv.pointer, k: qkv.pointer + C, v: qkv.pointer + C + KV * D,
                        ldqkv: W, lengths: $0.baseAddress)
        }
        #expect(o.values == o2.values)
        let dqkv = Tensor(shape: [B * T, W]), dqkv2 = Tensor(shape: [B * T, W])
        lengths.withUnsafeBufferPointer {
            att.backward(dq: dqkv.pointer, dk: dqkv.pointer + C, dv: dqkv.pointer + C + KV * D, lddqkv: W, dout: dy.pointer, lddo: C,
                         probs: nil, q: qkv.pointer, k: qkv.pointer + C, v: qkv.pointer + C + KV * D, ldqkv: W,
                         scratch: scratch.pointer, lengths: $0.baseAddress)
        }
        att.backward(dq: dqkv2.pointer, dk: dqkv2.pointer + C, dv: dqkv2.pointer + C + KV * D, lddqkv: W, dout: dy.pointer, lddo: C,
                     probs: probs.pointer, q: qkv.pointer, k: qkv.pointer + C, v: qkv.pointer + C + KV * D, ldqkv: W, scratch: scratch.pointer)
        #expect(dqkv.values == dqkv2.values)
        gradCheck([("qkv", qkv, dqkv)], loss: f)
    }

    @Test func swiGLU() {
        var rng = SeededRNG(seed: 8)
        let N = 4, F = 6
        let gu = randomTensor([N, 2 * F], &rng), dy = randomTensor([N, F], &rng)
        let act = Tensor(shape: [N, F]), sig = Tensor(shape: [N, F])
        func f() -> Double {
            SwiGLU.forward(act: act.pointer, sigmoid: sig.pointer, g: gu.pointer, ldg: 2 * F, u: gu.pointer + F, ldu: 2 * F, rows: N, width: F)
            return dot(act, dy)
        }
        _ = f()
        let dgu = Tensor(shape: [N, 2 * F])
        SwiGLU.backward(dg: dgu.pointer, lddg: 2 * F, du: dgu.pointer + F, lddu: 2 * F, dact: dy.pointer, sigmoid: sig.pointer,
                        g: gu.pointer, ldg: 2 * F, u: gu.pointer + F, ldu: 2 * F, rows: N, width: F)
        gradCheck([("gate|up", gu, dgu)], loss: f)
    }

    @Test func geluTanh() {
        var rng = SeededRNG(seed: 9)
        let x = randomTensor([40], &rng, std: 2), dy = randomTensor([40], &rng), y = Tensor(shape: [40])
        func f() -> Double { GELU.forward(y: y.pointer, x: x.pointer, count: 40); return dot(y, dy) }
        let dx = Tensor(shape: [40])
        GELU.backward(dx: dx.pointer, dy: dy.pointer, x: x.pointer, count: 40)
        gradCheck([("x", x, dx)], loss: f)
        GELU.forward(y: y.pointer, x: x.pointer, count: 40)
        let v = Double(x[0])
        let inner: Double = 0.7978845608028654 * (v + 0.044715 * v * v * v)
        let ref: Double = 0.5 * v * (1 + Foundation.tanh(inner))
        #expect(abs(Double(y[0]) - ref) < 1e-6)
    }

    @Test func crossEntropyWithTargetMask() {
        var rng = SeededRNG(seed: 10)
        let M = 5, V = 7
        let logits = randomTensor([M, V], &rng, std: 2)
        let targets: [Int32] = [3, -1, 0, 6, -1]
        func f() -> Double { targets.withUnsafeBufferPointer { CrossEntropy.forwardBackward(logits: logits.pointer, targets: $0.baseAddress!, rows: M, vocab: V, dlogits: nil).loss } }
        let d = Tensor(shape: [M, V])
        let r = targets.withUnsafeBufferPointer { CrossEntropy.forwardBackward(logits: logits.pointer, targets: $0.baseAddress!, rows: M, vocab: V, dlogits: d.pointer) }
        #expect(r.count == 3)
        for j in 0..<V { #expect(d[1 * V + j] == 0) }
        gradCheck([("logits", logits, d)], loss: f)
    }

    @Test(arguments: [nil, 2] as [Int?]) func routerLosses(topK: Int?) {
        var rng = SeededRNG(seed: 11)
        let N = 12, E = 3
        let logits = randomTensor([N, E], &rng), dw = randomTensor([N, E], &rng)
        let w = Tensor(shape: [N, E]), p = Tensor(shape: [N, E]), lse = Tensor(shape: [N]), frac = Tensor(shape: [E])
        func f() -> Double {
            let r = RouterLosses.forward(weights: w.pointer, probs: p.pointer, lse: lse.pointer, fraction: frac.pointer, logits: logits.pointer,
                                         tokens: N, experts: E, topK: topK, lambdaBalance: 0.1, lambdaZ: 0.01)
            return dot(w, dw) + r.balance + r.z
        }
        _ = f()
        let dl = Tensor(shape: [N, E])
        RouterLosses.backward(dlogits: dl.pointer, dweights: dw.pointer, weights: w.pointer, probs: p.pointer, lse: lse.pointer,
                              fraction: frac.pointer, tokens: N, experts: E, topK: topK, lambdaBalance: 0.1, lambdaZ: 0.01)
        gradCheck([("router logits", logits, dl)], h: 1e-3, loss: f)
        if topK == 2 { for n in 0..<N { #expect((0..<E).filter { w[n * E + $0] == 0 }.count == 1) } }
    }

    @Test(arguments: [DifferenceLoss.Normalization.rowL2Mean, .rawFrobenius]) func differenceLoss(norm: DifferenceLoss.Normalization) {
        var rng = SeededRNG(seed: 12)
        let B = 2, N = 3, C = 5
        let xt = randomTensor([B * N, C], &rng), xs = randomTensor([B * N, C], &rng)
        let ws = DifferenceLoss.Workspace(samples: B, tokens: N, width: C)
        func f() -> Double { DifferenceLoss.forward(ws: ws, xt: xt.pointer, xs: xs.pointer, samples: B, tokens: N, width: C, normalization: norm) }
        let l = f()
        // Gram identity against the direct ‖x̂tᵀx̂s‖² of sample 0
        var direct = 0.0
        for b in 0..<B {
            for i in 0..<C { for j in 0..<C {
                var s = 0.0
                for r in 0..<N {
                    func nrm(_ t: Tensor) -> Double { norm == .rawFrobenius ? 1 : (0..<C).reduce(0.0) { $0 + Double(t[(b * N + r) * C + $1] * t[(b * N + r) * C + $1]) }.squareRoot() }
                    s += Double(xt[(b * N + r) * C + i]) / nrm(xt) * Double(xs[(b * N + r) * C + j]) / nrm(xs)
                }
                direct += s * s
            } }
        }
        direct /= Double(B) * (norm == .rowL2Mean ? Double(C * C) : 1)
        #expect(abs(l - direct) < 1e-5 * max(1, direct))
        let dxt = Tensor(shape: [B * N, C]), dxs = Tensor(shape: [B * N, C]), scratch = Tensor(shape: [N, C])
        DifferenceLoss.backward(dxt: dxt.pointer, dxs: dxs.pointer, ws: ws, samples: B, tokens: N, width: C, normalization: norm,
                                scale: 1, scratch: scratch.pointer)
        gradCheck([("xt", xt, dxt), ("xs", xs, dxs)], h: 1e-3, loss: f)
    }
}

@Suite("Optimiser and schedule")
struct OptimTests {
    @Test func adamWMatchesHandComputedStep() {
        let p = Tensor(shape: [2], values: [1, -2]), g = Tensor(shape: [2], values: [0.5, 3])
        let opt = AdamW(count: 2, parameters: .init(weightDecay: 0.1, maxGradNorm: 1))
        let norm = opt.step(params: p, grads: g, lr: 0.01)
        #expect(abs(norm - (0.25 + 9.0).squareRoot()) < 1e-6)
        // step 1: m̂ = g', v̂ = g'², update = sign(g')·(1 − tiny) + wd·p
        let c = Float(1 / ((0.25 + 9.0).squareRoot() + 1e-6))
        for (i, (p0, g0)) in [(Float(1), Float(0.5)), (-2, 3)].enumerated() {
            let gc = g0 * c
            let expect = p0 - 0.01 * (gc / (abs(gc) + 1e-8) + 0.1 * p0)
            #expect(abs(p[i] - expect) < 1e-6)
        }
        #expect(opt.t == 1)
    }

    @Test func warmupCosine() {
        let s = LRSchedule(peak: 1e-3, minimum: 1e-5, warmupSteps: 10, totalSteps: 110)
        #expect(abs(s.rate(at: 0) - 1e-4) < 1e-9)
        #expect(abs(s.rate(at: 9) - 1e-3) < 1e-9)
        #expect(abs(s.rate(at: 60) - (1e-5 + (1e-3 - 1e-5) * 0.5)) < 1e-8)
        #expect(abs(s.rate(at: 110) - 1e-5) < 1e-9 && abs(s.rate(at: 500) - 1e-5) < 1e-9)
    }
}
