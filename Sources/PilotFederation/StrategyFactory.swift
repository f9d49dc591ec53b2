import PilotModel

/// Builds the strategy `run.algorithm` names from the typed settings, each with its own section and
/// the averaging rule of `[robust]`.
public enum StrategyFactory {
    public static func make(_ s: RunSettings) -> FederatedStrategy {
        let lr = s.train.lr, rule = s.robust.rule
        switch s.run.algorithm {
        case .local: return LocalStrategy(learningRate: lr, aggregator: rule)
        case .centralized: return CentralizedStrategy(learningRate: lr, aggregator: rule)
        case .fedavg: return FedAvgStrategy(learningRate: lr, aggregator: rule)
        case .fedprox: return FedProxStrategy(learningRate: lr, mu: Float(s.fedprox.mu), aggregator: rule)
        case .shepherd: return ShepherdStrategy(learningRate: lr, aggregator: rule)
        case .shepherdLoRA: return ShepherdLoRAStrategy(learningRate: lr, aggregator: rule)
        case .feddpa: return FedDPAStrategy(learningRate: lr, supportPrompts: s.feddpa.support, aggregator: rule)
        case .fedadam:
            var h = FedAdamServer.Hyper()
            h.eta = s.fedadam.eta; h.beta1 = s.fedadam.beta1; h.beta2 = s.fedadam.beta2
            h.tau = s.fedadam.tau; h.biasCorrected = s.fedadam.biasCorrection
            return FedAdamStrategy(learningRate: lr, hyper: h, aggregator: rule)
        case .pilot:
            var settings = PilotStrategy.Settings(s.pilot, train: s.train, aggregator: rule)
            settings.seed = UInt64(s.run.seed)
            return PilotStrategy(settings: settings)
        }
    }
}

extension PilotStrategy.Settings {
    /// `[pilot]` with the stage learning rates of `[train]`; the ablation switches zero what they remove.
    public init(_ p: PilotSection, train: TrainSection, aggregator: RobustAggregator) {
        self.init()
        lrStage1 = train.lrStage1
        lrStage2 = train.lrStage2
        connector.lambdaDiff = p.diffLoss ? Float(p.lambdaDiff) : 0
        connector.lambdaBalance = p.auxLosses ? Float(p.lambdaBalance) : 0
        connector.lambdaZ = p.auxLosses ? Float(p.lambdaZ) : 0
        connector.diffNormalization = p.diffNormalization
        connector.routerTopK = p.routerTopK == 0 ? nil : p.routerTopK
        connector.clientAdapterInStage2 = p.clientAdapterStage2
        connector.crossTaskInit = p.crossTaskInit
        crossTask = p.crossTask
        ata = p.ata
        ataSelection = p.ataSelection
        ataM = p.ataM
        ataNormalisation = p.ataZ
        self.aggregator = aggregator
        psiSInit = p.psiSInit ?? .copy
        psiSNoise = p.psiSNoise ?? 0.1
    }
}
