import PilotCore
import PilotJob
import PilotModel

/// A section of the run configuration: a `Decodable` struct with one field per key.
public protocol ConfigSection: Decodable, Sendable, Equatable {
    /// The section's name in the file (`[train]` → "train").
    static var name: String { get }
    /// Every key of the section with its type, range, default and meaning.
    static var keys: [ConfigKey] { get }
}

/// The methods `run.algorithm` names.
public enum Algorithm: String, Decodable, Sendable, CaseIterable {
    case pilot, local, centralized, fedavg, fedprox, fedadam, shepherd, feddpa
    /// Shepherd as published: LoRA only, the connector frozen at the base (`shepherd` trains a private connector too).
    case shepherdLoRA = "shepherd_lora"
}

/// `eval.when`: which model a client is scored on in an evaluation round.
public enum EvalWhen: String, Decodable, Sendable, CaseIterable {
    /// Its personalised model after the round's aggregation (metrics.h5 `clients/eval_score`).
    case after
    /// The model it trained this round, before aggregation (`clients/eval_score_before`).
    case before
    /// Both.
    case both
    public var scoresAfter: Bool { self != .before }
    public var scoresBefore: Bool { self != .after }
}

/// `pilot.psi_s_init`: how stage 1's client adapter ψs starts.
public enum PsiSInit: String, Decodable, Sendable, CaseIterable {
    /// A copy of the pretrained MLP, as ψt (the paper).
    case copy
    /// The copy plus seeded Gaussian noise (`pilot.psi_s_noise` × each tensor's RMS).
    case perturbed
}

/// A run configuration decoded once into typed sections: the only way the rest of the program
/// reads a config (no key is looked up by name outside `ConfigDecoder`).
public struct RunSettings: Sendable, Equatable {
    public var run: RunSection
    public var model: ModelSection
    public var train: TrainSection
    public var pilot: PilotSection
    public var fedprox: FedProxSection
    public var fedadam: FedAdamSection
    public var feddpa: FedDPASection
    public var robust: RobustSection
    public var dp: DPSection
    public var faults: FaultsSection
    public var eval: EvalSection
    public var exchange: ExchangeSection
    public var secure: SecureSection

    /// Every section in file order: the schema is their keys, in this order.
    static let sections: [any ConfigSection.Type] = [
        RunSection.self, ModelSection.self, TrainSection.self, PilotSection.self, FedProxSection.self, FedAdamSection.self,
        FedDPASection.self, RobustSection.self, DPSection.self, FaultsSection.self, EvalSection.self, ExchangeSection.self,
        SecureSection.self,
    ]

    /// Decodes every section of a validated config (the faults from its `faults` part).
    public init(_ config: RunConfig) throws {
        func section<S: ConfigSection>(_ type: S.Type) throws -> S {
            try S(from: ConfigDecoder(section: S.name, values: S.name == FaultsSection.name ? config.faults
                                      : config.values.merging(config.machine) { a, _ in a }))
        }
        run = try section(RunSection.self); model = try section(ModelSection.self); train = try section(TrainSection.self)
        pilot = try section(PilotSection.self); fedprox = try section(FedProxSection.self); fedadam = try section(FedAdamSection.self)
        feddpa = try section(FedDPASection.self); robust = try section(RobustSection.self); dp = try section(DPSection.self)
        faults = try section(FaultsSection.self); eval = try section(EvalSection.self)
        exchange = try section(ExchangeSection.self)
        secure = try section(SecureSection.self)
        try checkPsiS()
    }

    /// `pilot.psi_s_init` is Pilot's stage-1 connector, and `pilot.psi_s_noise` the scale of its "perturbed" start.
    func checkPsiS() throws {
        if let i = pilot.psiSInit, run.algorithm != .pilot {
            throw PilotError.invalidArgument("pilot.psi_s_init = \"\(i.rawValue)\" sets Pilot's stage-1 client adapter, but run.algorithm = \"\(run.algorithm.rawValue)\" has none: remove the key, or set run.algorithm = \"pilot\"")
        }
        if let n = pilot.psiSNoise, pilot.psiSInit != .perturbed {
            throw PilotError.invalidArgument("pilot.psi_s_noise = \(n) scales the noise of pilot.psi_s_init = \"perturbed\", but pilot.psi_s_init is \(pilot.psiSInit.map { "\"\($0.rawValue)\"" } ?? "unset (copy)"): set pilot.psi_s_init = \"perturbed\", or remove pilot.psi_s_noise")
        }
    }

    /// Where K clients go on `worldSize` ranks (`Placement`), checked against the round's sample,
    /// centralized training's one client per rank and the robust aggregator's least number of
    /// updates (`checkAggregator`). `clientTasks` names each client's task (Pilot's Eq. 10 groups;
    /// empty: not checked per task). `pilot train` calls it before MPI starts, the round loop again
    /// on every rank.
    public func placement(clients k: Int, worldSize: Int, clientTasks: [String] = []) throws -> Placement {
        let placement = try Placement(clients: k, worldSize: worldSize, clientsPerRank: run.clientsPerRank ?? 0)
        let sampling = RoundSettings(self).sampling
        if let m = run.minClients, m > k {
            throw PilotError.invalidArgument("run.min_clients = \(m) is more than the \(k) clients of the scenario (\(run.data)), so no round can train that many: set it to \(k) or less, or leave it unset")
        }
        try sampling.validate(clients: k)
        try checkLoRARanks(clients: k)
        try checkCompression()
        try checkSecure()
        try checkAggregator(sampled: sampling.size(of: k), clients: k, clientTasks: clientTasks)
        if run.algorithm == .centralized && (placement.clientRanks != k || sampling.size(of: k) != k) {
            throw PilotError.invalidArgument("centralized training is data-parallel with one client per rank and every client in every round: run with -np \(k + 1), without run.clients_per_rank > 1 or run.fraction < 1")
        }
        return placement
    }

    /// Refuses a robust aggregator that no round could apply: Krum needs f + 3 updates and
    /// multi-Krum max(f + 3, m) (`RobustAggregator.minimumClients`), but a round aggregates at most
    /// the sampled count, and Pilot's Eq. 10 at most a task's clients. Fewer in one round only (a
    /// rejection, a task the sample thinned) falls back to the median at run time instead.
    func checkAggregator(sampled: Int, clients k: Int, clientTasks: [String]) throws {
        let rule = robust.rule, need = rule.minimumClients
        guard need > 1, ![.local, .centralized].contains(run.algorithm) else { return }
        let fix = "lower \(rule.keys.split(separator: ",").dropFirst().map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: " or ")), or use robust.aggregator = \"median\" or \"trimmed_mean\""
        if sampled < need {
            let how = sampled == k ? "the scenario has \(k) clients" : "run.fraction = \(run.fraction ?? 1) and run.min_clients = \(run.minClients ?? 0) sample \(sampled) of the \(k) clients per round"
            throw PilotError.invalidArgument("robust.aggregator = \(rule.label) (\(rule.keys)) needs at least \(need) updates per round, but \(how): "
                                             + (sampled == k ? fix : "raise run.fraction or run.min_clients to sample \(need) or more (at most \(k)), or \(fix)"))
        }
        if run.algorithm == .pilot, !clientTasks.isEmpty {
            var sizes: [String: Int] = [:]
            for t in clientTasks { sizes[t, default: 0] += 1 }
            if let (task, n) = sizes.sorted(by: { ($0.value, $0.key) < ($1.value, $1.key) }).first, n < need {
                throw PilotError.invalidArgument("robust.aggregator = \(rule.label) (\(rule.keys)) needs at least \(need) updates per task (Pilot's Eq. 10 combines each task's clients on their own), but task '\(task)' has \(n) client(s) in \(run.data): \(fix)")
            }
        }
    }

    /// The model settings a run may change on the base's model: LoRA rank, alpha and targets, and the
    /// dtype of the frozen LM's matrices.
    public var modelOverrides: ModelOverrides {
        var o = ModelOverrides(loraRank: model.loraRank, loraAlpha: model.loraAlpha.map(Float.init), loraTargets: model.loraTargets,
                               baseDType: model.baseDtype)
        o.loraRanks = model.loraRanks
        return o
    }
}

extension ATASelection: Decodable {}
extension ATANormalisation: Decodable {}
