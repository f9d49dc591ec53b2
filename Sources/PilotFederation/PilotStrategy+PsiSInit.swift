import PilotModel

/// Stage 1's client adapter ψs at the start of round 1 (`pilot.psi_s_init`).
///
/// The paper starts ψt and ψs from the same pretrained MLP. Their sum is the connector's output, so
/// the cross-entropy sends both the same gradient, and the difference loss Ld = ‖x̂tᵀx̂s‖²_F is
/// symmetric in them, so its gradients are equal too when xt = xs: the two stay identical through
/// stage 1 and Ld cannot separate them (docs/baselines.md, "The difference loss"). "perturbed" adds
/// seeded Gaussian noise to ψs (std `psiSNoise` × each tensor's RMS, a stream per run seed and
/// client), so that Ld has something to act on: a deviation from the paper, for measuring Ld.
extension PilotStrategy {
    func initialiseClientAdapter(_ model: MLLM, client: Int) throws {
        guard settings.psiSInit == .perturbed else { return }
        var rng = SeededRNG(seed: settings.seed &* 0x9E37_79B9_7F4A_7C15 &+ 0x5053_495F_5300 &+ UInt64(client))
        for name in model.names(inGroup: ConnectorNames.clientAdapter) {
            let t = try model.tensor(named: name)
            var ss = 0.0
            for i in 0..<t.count { ss += Double(t.pointer[i]) * Double(t.pointer[i]) }
            let std = settings.psiSNoise * (ss / Double(max(t.count, 1))).squareRoot()
            for i in 0..<t.count { t.pointer[i] += Float(std * rng.normal()) }
        }
    }
}
