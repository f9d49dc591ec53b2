import PilotCore
import PilotModel

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
        public init() {}
    }

    public let settings: Settings
    public var name: String { "pilot" }
    /// The T aggregated task adapters of the last round (server state, for checkpoints).
    var taskAdapters: [[Float]] = []

    public init(settings: Settings) { self.settings = settings }

    public func modelSpec(round: Int, client: Int, federation: Federation) -> ModelSpec {
        var options = settings.connector
        options.numTasks = federation.numTasks
        options.localTask = federation.clientTasks[client]
        if round == 1 {
            return ModelSpec(variant: .pilotStage1, options: options, trainable: .variantDefault, learningRate: settings.lrStage1, stage: 1)
        }
        var trainable = TrainableSelection.variantDefault
        if !settings.crossTask {
            var groups = ["lora", "connector/task_adapters/\(options.localTask)", "connector/router"]
            if options.clientAdapterInStage2 == .trainable { groups.append("connector/client_adapter") }
            trainable = .groups(Set(groups))
        }
        return ModelSpec(variant: .pilotStage2, options: options, trainable: trainable, learningRate: settings.lrStage2, stage: 2)
    }

    public func prepare(model: MLLM, round: Int, client: Int, state: TensorDict?, federation: Federation) throws {
        // Round 1: ψt and ψs both start from the pretrained connector (BaseCheckpoint.load does it).
        if round == 1 { return }
        guard let state else { throw PilotError.message("Pilot stage 2 needs the client's state from round \(round - 1)") }
        // Stage 1's own task adapter is superseded by the aggregated task adapters in the state.
        try model.assign(state) { !$0.hasPrefix("connector/task_adapter/") }
        let crossTaskInState = state.keys.contains { $0.hasPrefix("connector/cross_task_adapters/") }
        if !settings.crossTask {
            for name in model.parameters.names where name.hasPrefix("connector/cross_task_adapters/") {
                try model.tensor(named: name).zero()
            }
        } else if !crossTaskInState {
            try model.initializeCrossTaskAdapters()  // first stage-2 round: copy of the local task adapter (or random)
        }
    }

    public func communicate(round: Int, model: MLLM?, federation: Federation) throws -> TensorDict? {
        let stage1 = round == 1
        var localAdapter: [Float]? = nil
        var lora: [Float]? = nil
        var adapterGroup = ""
        if let model, let client = federation.client {
            adapterGroup = stage1 ? "connector/task_adapter" : "connector/task_adapters/\(federation.clientTasks[client])"
            localAdapter = try model.trainableView(group: adapterGroup).values
            lora = try model.trainableView(group: "lora").values
        }
        // Eq. 10: task-aware aggregation inside each task's communicator; the T means reach everyone.
        let mean = try localAdapter.map { try federation.taskMean($0, samples: federation.clientSamples[federation.client!]) }
        let means = try federation.shareTaskMeans(mean)
        if federation.isServer { taskAdapters = means }

        // Eq. 11–12: ATA on the LoRA vectors at the server, personalised results scattered back.
        let personal = try federation.gatherMixScatter(lora) { vectors in
            try self.mixLoRA(federation.updates(vectors), tasks: federation.clientTasks)
        }
        guard let model, let personal else { return nil }

        var state = try model.trainableTensors()
        // Drop stage 1's single task adapter; the aggregated task adapters replace it.
        for key in state.keys where key.hasPrefix("connector/task_adapter/") || key.hasPrefix("connector/task_adapters/") {
            state[key] = nil
        }
        for (t, v) in means.enumerated() {
            let dict = try NamedTensors(model: model, group: adapterGroup, values: v)
                .dictionary(renaming: adapterGroup + "/", to: "connector/task_adapters/\(t)/")
            state.merge(dict) { _, new in new }
        }
        state.merge(try NamedTensors(model: model, group: "lora", values: personal).dictionary()) { _, new in new }
        // Frozen parts a later round needs (the client adapter is frozen in stage 2 by default).
        for name in model.parameters.names where name.hasPrefix("connector/client_adapter/") && state[name] == nil {
            state[name] = try model.tensor(named: name).values
        }
        return state
    }

    public func serverState() -> TensorDict {
        var out = TensorDict()
        for (t, v) in taskAdapters.enumerated() { out["task_adapters/\(t)"] = v }
        return out
    }

    public func restoreServerState(_ state: TensorDict) throws {
        taskAdapters = state.keys.filter { $0.hasPrefix("task_adapters/") }
            .sorted { Int($0.dropFirst("task_adapters/".count))! < Int($1.dropFirst("task_adapters/".count))! }
            .map { state[$0]! }
    }
}
