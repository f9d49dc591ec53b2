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

    /// Every section in file order: the schema is their keys, in this order.
    static let sections: [any ConfigSection.Type] = [
        RunSection.self, ModelSection.self, TrainSection.self, PilotSection.self, FedProxSection.self, FedAdamSection.self,
        FedDPASection.self, RobustSection.self, DPSection.self, FaultsSection.self, EvalSection.self,
    ]

    /// Decodes every section of a validated config (the faults from its `faults` part).
    public init(_ config: RunConfig) throws {
        func section<S: ConfigSection>(_ type: S.Type) throws -> S {
            try S(from: ConfigDecoder(section: S.name, values: S.name == FaultsSection.name ? config.faults : config.values))
        }
        run = try section(RunSection.self); model = try section(ModelSection.self); train = try section(TrainSection.self)
        pilot = try section(PilotSection.self); fedprox = try section(FedProxSection.self); fedadam = try section(FedAdamSection.self)
        feddpa = try section(FedDPASection.self); robust = try section(RobustSection.self); dp = try section(DPSection.self)
        faults = try section(FaultsSection.self); eval = try section(EvalSection.self)
    }

    /// The model settings a run may change on the base's model: LoRA rank, alpha and targets.
    public var modelOverrides: ModelOverrides {
        ModelOverrides(loraRank: model.loraRank, loraAlpha: model.loraAlpha.map(Float.init), loraTargets: model.loraTargets)
    }
}

extension ATASelection: Decodable {}
extension ATANormalisation: Decodable {}
