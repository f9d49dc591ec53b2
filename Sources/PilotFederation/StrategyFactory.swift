import PilotCore
import PilotModel

extension RoundLoop {
    /// The strategy of `run.algorithm`, with its settings decoded from the config once.
    static func makeStrategy(_ c: RunConfig) throws -> FederatedStrategy {
        let strategy = try makeBareStrategy(c)
        let rule = RoundSettings.aggregator(c)
        if let s = strategy as? SingleStageStrategy { s.aggregator = rule }
        return strategy
    }

    static func makeBareStrategy(_ c: RunConfig) throws -> FederatedStrategy {
        switch c.string("run.algorithm") {
        case "local": return LocalStrategy(learningRate: c.double("train.lr"))
        case "centralized": return CentralizedStrategy(learningRate: c.double("train.lr"))
        case "fedavg": return FedAvgStrategy(learningRate: c.double("train.lr"))
        case "fedprox": return FedProxStrategy(learningRate: c.double("train.lr"), mu: Float(c.double("fedprox.mu")))
        case "shepherd": return ShepherdStrategy(learningRate: c.double("train.lr"))
        case "feddpa": return FedDPAStrategy(learningRate: c.double("train.lr"), supportPrompts: c.int("feddpa.support"))
        case "fedadam":
            var h = FedAdamServer.Hyper()
            h.eta = c.double("fedadam.eta"); h.beta1 = c.double("fedadam.beta1"); h.beta2 = c.double("fedadam.beta2")
            h.tau = c.double("fedadam.tau"); h.biasCorrected = c.bool("fedadam.bias_correction")
            return FedAdamStrategy(learningRate: c.double("train.lr"), hyper: h)
        case "pilot":
            var s = PilotStrategy.Settings()
            s.lrStage1 = c.double("train.lr_stage1")
            s.lrStage2 = c.double("train.lr_stage2")
            s.connector.lambdaDiff = c.bool("pilot.diff_loss") ? Float(c.double("pilot.lambda_diff")) : 0
            let aux = c.bool("pilot.aux_losses")
            s.connector.lambdaBalance = aux ? Float(c.double("pilot.lambda_balance")) : 0
            s.connector.lambdaZ = aux ? Float(c.double("pilot.lambda_z")) : 0
            s.connector.diffNormalization = c.string("pilot.diff_normalization") == "raw_frobenius" ? .rawFrobenius : .rowL2Mean
            s.connector.routerTopK = c.int("pilot.router_top_k") == 0 ? nil : c.int("pilot.router_top_k")
            s.connector.clientAdapterInStage2 = .init(rawValue: c.string("pilot.client_adapter_stage2"))!
            s.connector.crossTaskInit = c.string("pilot.cross_task_init") == "random" ? .random : .copyOfLocal
            s.crossTask = c.bool("pilot.cross_task")
            s.ata = c.bool("pilot.ata")
            s.ataSelection = ATASelection(rawValue: c.string("pilot.ata_selection"))!
            s.ataM = c.int("pilot.ata_m")
            s.ataNormalisation = ATANormalisation(rawValue: c.string("pilot.ata_z"))!
            s.aggregator = RoundSettings.aggregator(c)
            return PilotStrategy(settings: s)
        case let other:
            throw PilotError.invalidArgument("run.algorithm \"\(other)\" is not implemented")
        }
    }
}
