import Foundation
import PilotCore
import PilotData
import PilotJob
import PilotModel
import PilotTensor

/// A client's personalised model as a committed round left it: the base checkpoint plus the
/// client's state file, in the variant its strategy trained that round.
public enum PersonalisedModel {
    public static func load(run: String, round: Int? = nil, client: Int, maxBatch: Int = 32) throws -> (model: MLLM, codec: any ExampleCodec, task: FedTask, round: Int) {
        guard let r = try round ?? RoundCheckpoint.latestRound(run: run) else {
            throw PilotError.message("'\(run)' has no complete checkpoint")
        }
        let (meta, _, digests) = try RoundCheckpoint.readRound(run: run, round: r)
        let config = try RunSettings(RunConfig(effectiveFile: meta.configText, path: RoundCheckpoint.roundFile(run, r)))
        let scenario = try ScenarioDirectory(path: config.run.data)
        guard client >= 0 && client < scenario.clientCount else {
            throw PilotError.invalidArgument("client \(client) does not exist: the run has clients 0...\(scenario.clientCount - 1)")
        }
        let tasks = scenario.tasks
        let clientTasks = scenario.clientTasks.map { tasks.firstIndex(of: $0)! }
        let state = try RoundCheckpoint.readClient(run: run, round: r, client: client, expectedDigest: client < digests.count ? digests[client] : nil)
        let strategy = StrategyFactory.make(config)
        let federation = Federation(offline: clientTasks, numTasks: tasks.count)
        let spec = strategy.modelSpec(round: r, client: client, roster: federation.roster)
        let basePath = config.run.base
        let (stored, _) = try BaseCheckpoint.readMetadata(path: basePath)
        let lm = try PretrainedBase.load(for: config.modelOverrides.apply(to: stored), context: "the base checkpoint '\(basePath)' of run '\(run)'",
                                         lmPath: config.model.lm, towerPath: config.model.visionTower)
        let (model, codec) = try BaseCheckpoint.load(path: basePath, variant: spec.variant, options: spec.options,
                                                     trainable: spec.trainable, maxBatch: maxBatch, seed: UInt64(config.run.seed),
                                                     base: lm, overrides: config.modelOverrides.client(client))
        try ClientHost.putPersonalised(model, state: state, task: clientTasks[client])
        return (model, codec, scenario.clientTasks[client], r)
    }
}
