import PilotCore
import PilotJob
import PilotModel
import PilotTensor

private typealias Names = ConnectorNames

/// Pilot (Xiong et al., AAAI 2025): two-stage "adapter on adapter" connectors, task-aware
/// aggregation of the visual task adapters (Eq. 10) and adaptive aggregation of the LoRA text
/// adapters (ATA, Eq. 11–12). Round 1 is stage 1; rounds 2…R are stage 2 (CT-MoA).
///
/// What crosses the network each round: the local task adapter (allreduce inside the task's
/// communicator, then the T task means to every client through the server) and the LoRA vector
/// (gathered at the server, mixed by ATA, scattered back). The client adapter, the cross-task
/// adapters and the router stay on their client.
public final class PilotStrategy: FederatedStrategy {
    public struct Settings: Sendable, Equatable {
        public var lrStage1 = 1e-3
        public var lrStage2 = 1e-3
        public var connector = ConnectorOptions()
        /// false: the ablation without cross-task adapters (zeroed and frozen).
        public var crossTask = true
        /// false: plain n_k-weighted averaging of LoRA instead of ATA.
        public var ata = true
        public var ataSelection: ATASelection = .topM
        public var ataM = 6
        public var ataNormalisation: ATANormalisation = .normalised
        /// Eq. 10's averaging step inside each task (`robust.aggregator`; the n_k-weighted mean by default).
        public var aggregator: RobustAggregator = .mean
        /// How stage 1's client adapter ψs starts (`pilot.psi_s_init`): a copy of ψt (the paper), or perturbed.
        public var psiSInit: PsiSInit = .copy
        /// The perturbation's std relative to each ψs tensor's RMS (`pilot.psi_s_noise`).
        public var psiSNoise = 0.1
        /// The run's seed (`run.seed`), which seeds the perturbation.
        public var seed: UInt64 = 0
        public init() {}
    }

    public let settings: Settings
    public var name: String { "pilot" }

    public init(settings: Settings) { self.settings = settings }

    public func modelSpec(round: Int, client: Int, roster: Roster) -> ModelSpec {
        var options = settings.connector
        options.numTasks = roster.numTasks
        options.localTask = roster.clientTasks[client]
        if round == 1 {
            return ModelSpec(variant: .pilotStage1, options: options, trainable: .variantDefault, learningRate: settings.lrStage1, stage: 1)
        }
        var trainable = TrainableSelection.variantDefault
        if !settings.crossTask {
            var groups = ["lora", Names.taskAdapters(options.localTask), Names.router]
            if options.clientAdapterInStage2 == .trainable { groups.append(Names.clientAdapter) }
            trainable = .groups(Set(groups))
        }
        return ModelSpec(variant: .pilotStage2, options: options, trainable: trainable, learningRate: settings.lrStage2, stage: 2)
    }

    public func prepare(model: MLLM, round: Int, client: Int, state: NamedTensors, roster: Roster) throws {
        // Round 1: ψt and ψs both start from the pretrained connector (BaseCheckpoint.load does it).
        // A client that first trains in a later round (sampling) starts stage 2 from the same base.
        if round == 1 { return try initialiseClientAdapter(model, client: client) }
        // The state holds every task's aggregated adapter in its slot; stage 1's own ψt is superseded.
        try model.assign(state) { !$0.hasPrefix(Names.prefix(Names.taskAdapter)) }
        let crossTaskInState = state.names.contains { $0.hasPrefix(Names.prefix(Names.crossTaskAdapters)) }
        if !settings.crossTask {
            for name in model.parameters.names where name.hasPrefix(Names.prefix(Names.crossTaskAdapters)) {
                try model.tensor(named: name).zero()
            }
        } else if !crossTaskInState {
            try model.initializeCrossTaskAdapters()  // first stage-2 round: copy of the local task adapter (or random)
        }
    }

    /// The update: the client's task adapter, named for its task's slot (connector/task_adapters/t/…)
    /// in both stages, and its LoRA tensors. Kept: every other trainable tensor and the frozen client
    /// adapter (a later round needs it); the task adapters come back aggregated.
    public func outcome(of trained: TrainedClient, roster: Roster) throws -> LocalOutcome {
        let model = trained.model
        let t = roster.clientTasks[trained.client]
        let adapterNames = model.names(inGroup: trained.round == 1 ? Names.taskAdapter : Names.taskAdapters(t))
        let loraNames = model.names(inGroup: "lora")
        let sent = try NamedTensors(model: model, names: adapterNames + loraNames).renamed { Names.slotName($0, task: t) }
        let update = ClientUpdate(client: trained.client, examples: roster.clientSamples[trained.client], tensors: sent)
        var kept = try model.trainableTensors().filter { !Names.isTaskAdapter($0) }
        for name in model.parameters.names where name.hasPrefix(Names.prefix(Names.clientAdapter)) && !kept.contains(name) {
            let frozen = try model.tensor(named: name)
            try kept.append(name, shape: frozen.shape, values: frozen.buffer)
        }
        // the same tensors as the round began
        var start: [Float] = []
        for name in adapterNames + loraNames {
            guard let e = model.parameters.entries.first(where: { $0.name == name && $0.trainable }) else { continue }
            start += trained.start[e.offset..<(e.offset + e.count)]
        }
        let reference = start.count == sent.values.count ? try sent.with(values: start) : nil
        return LocalOutcome(update: update, kept: kept, reference: reference)
    }
}
