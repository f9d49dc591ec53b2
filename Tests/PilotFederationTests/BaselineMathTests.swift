import PilotFederation
import Testing

/// Server math of the baselines against hand-computed cases and against Flower 1.41 itself.
///
/// Golden values: ../shared/refs/fedopt_ref.py (flwr 1.41.0, numpy float64) on this input, mode "delta"
/// (each client's vector is its update from the global model it received):
///   initial [0.5, -1.25, 0, 2, 0.125]; eta 0.05, beta_1 0.9, beta_2 0.99, tau 1e-3; n = [3, 5, 2];
///   the three rounds of client updates in `rounds` below.
@Suite("Baseline server math")
struct BaselineMathTests {
    static let initial: [Float] = [0.5, -1.25, 0.0, 2.0, 0.125]
    static let samples = [3.0, 5.0, 2.0]
    static let rounds: [[[Float]]] = [
        [[0.1, -0.2, 0.0, 0.05, 0.3], [0.3, 0.1, -0.4, 0.0, 0.2], [-0.2, 0.0, 0.1, 0.5, -0.1]],
        [[0.02, 0.04, -0.06, 0.01, 0.0], [-0.05, 0.03, 0.02, -0.01, 0.07], [0.0, -0.09, 0.05, 0.02, 0.01]],
        [[-0.3, 0.2, 0.1, -0.1, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0], [0.4, -0.2, 0.3, 0.2, -0.5]],
    ]
    /// Flower's FedAvg (= FedProx's server) global model after each round.
    static let flowerFedAvg: [[Double]] = [
        [0.6400000000000001, -1.26, -0.18, 2.1149999999999998, 0.29500000000000004],
        [0.6210000000000001, -1.251, -0.178, 2.117, 0.332],
        [0.6110000000000002, -1.2309999999999999, -0.08799999999999998, 2.127, 0.232],
    ]
    /// Flower's FedAdam (bias-corrected step).
    static let flowerFedAdam: [[Double]] = [
        [0.5346481234588285, -1.2685614947100867, -0.03516914787174321, 2.0341531502665595, 0.16006060111905265],
        [0.5572414154695173, -1.2685614947100865, -0.06207174766855958, 2.0611103702020306, 0.1930473294770416],
        [0.5738194178289886, -1.2516074036003806, -0.06950556024896949, 2.085477225780248, 0.20284238472406133],
    ]
    /// The paper's FedAdam (Reddi et al., no bias correction), `fedadam_paper` of the reference script.
    static let paperFedAdam: [[Double]] = [
        [0.5466666666666666, -1.275, -0.04736842105263155, 2.046, 0.1722222222222222],
        [0.5821940539665457, -1.2750000000000001, -0.08967208719844888, 2.088389554949425, 0.22409302854720298],
        [0.6109147045151101, -1.2456277924461636, -0.10255083632249498, 2.1306040467111234, 0.24106252539932602],
    ]

    static func hyper(biasCorrected: Bool) -> FedAdamServer.Hyper {
        var h = FedAdamServer.Hyper()
        h.eta = 0.05; h.beta1 = 0.9; h.beta2 = 0.99; h.tau = 1e-3; h.biasCorrected = biasCorrected
        return h
    }

    static func close(_ a: [Float], _ b: [Double], tol: Double = 2e-6) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { abs(Double($0) - $1) <= tol * max(1, abs($1)) }
    }

    @Test("FedAvg and FedProx's server: n_k-weighted mean, as Flower computes it, over 3 rounds")
    func fedAvgMatchesFlower() throws {
        var x = Self.initial
        for (r, updates) in Self.rounds.enumerated() {
            let models = updates.map { u in zip(x, u).map { $0 + $1 } }
            x = try Aggregate.weightedMean(models, weights: Self.samples)
            #expect(Self.close(x, Self.flowerFedAvg[r]), "round \(r + 1): \(x)")
        }
    }

    @Test("FedAvg by hand: weights 1 and 3 give (1·a + 3·b)/4")
    func fedAvgByHand() throws {
        let mean = try Aggregate.weightedMean([[1, -2], [5, 2]], weights: [1, 3])
        #expect(mean == [4, 1])
    }

    @Test("FedAdam, paper form and Flower's bias-corrected form, over 3 rounds", arguments: [false, true])
    func fedAdamMatchesReference(biasCorrected: Bool) throws {
        var server = FedAdamServer(hyper: Self.hyper(biasCorrected: biasCorrected))
        var x = Self.initial
        let golden = biasCorrected ? Self.flowerFedAdam : Self.paperFedAdam
        for (r, updates) in Self.rounds.enumerated() {
            let delta = try Aggregate.weightedMean(updates, weights: Self.samples)
            let u = try server.update(delta: delta)
            x = zip(x, u).map { $0 + $1 }
            #expect(Self.close(x, golden[r]), "round \(r + 1): \(x) vs \(golden[r])")
        }
        #expect(server.t == 3)
    }

    @Test("FedAdam by hand: the first step is u = η·0.1Δ/(0.1·abs(Δ) + τ), and Flower scales η at t = 1")
    func fedAdamFirstStepByHand() throws {
        var h = FedAdamServer.Hyper(); h.eta = 0.1; h.beta1 = 0.9; h.beta2 = 0.99; h.tau = 1e-3
        var s = FedAdamServer(hyper: h)
        let u = try s.update(delta: [0.2, -0.5, 0])
        // m = 0.1·Δ, v = 0.01·Δ², so u = η·0.1Δ/(0.1|Δ| + τ)
        let expected = [0.1 * 0.02 / (0.02 + 1e-3), 0.1 * -0.05 / (0.05 + 1e-3), 0]
        #expect(zip(u, expected).allSatisfy { abs(Double($0) - $1) < 1e-7 }, "\(u)")
        // Flower's correction at t = 1: η·√(1−β2²)/(1−β1²)
        var hc = h; hc.biasCorrected = true
        #expect(abs(FedAdamServer(hyper: hc).stepSize(round: 1) - 0.1 * (1 - 0.99 * 0.99).squareRoot() / (1 - 0.9 * 0.9)) < 1e-15)
    }

    @Test("FedAdam server state survives a checkpoint round trip and continues identically")
    func fedAdamStateRoundTrip() throws {
        var a = FedAdamServer(hyper: Self.hyper(biasCorrected: true))
        _ = try a.update(delta: [0.1, -0.2, 0.3])
        var b = FedAdamServer(hyper: Self.hyper(biasCorrected: true))
        try b.restore(a.state)
        #expect(b == a)
        let ua = try a.update(delta: [0.05, 0.05, -0.1]), ub = try b.update(delta: [0.05, 0.05, -0.1])
        #expect(ua.map(\.bitPattern) == ub.map(\.bitPattern))
        #expect(throws: (any Error).self) { try b.restore(["m": [0], "v": [0]]) }
        #expect(throws: (any Error).self) { _ = try a.update(delta: [1, 2]) }
    }

    @Test("FedDPA-T instance weighting: mean cosine similarity to the support prompts, clamped to [0, 1]")
    func fedDPAWeighting() {
        let s1: [Float] = [1, 0, 0], s2: [Float] = [0, 1, 0]
        #expect(FedDPAInference.weight(query: [3, 0, 0], support: [s1]) == 1)                 // same direction, any scale
        #expect(abs(FedDPAInference.weight(query: [1, 0, 0], support: [s1, s2]) - 0.5) < 1e-7) // mean of 1 and 0
        #expect(FedDPAInference.weight(query: [0, 0, 2], support: [s1, s2]) == 0)              // orthogonal to both
        #expect(FedDPAInference.weight(query: [-1, 0, 0], support: [s1]) == 0)                 // opposite: clamped
        // 45° to s1 and 45° to s2: cos = 1/√2 each
        #expect(abs(Double(FedDPAInference.weight(query: [1, 1, 0], support: [s1, s2])) - 0.5.squareRoot()) < 1e-6)
        #expect(FedDPAInference.weight(query: [1, 1, 0], support: []) == 0)
        #expect(FedDPAInference.cosine([0, 0], [1, 1]) == 0)
    }
}
