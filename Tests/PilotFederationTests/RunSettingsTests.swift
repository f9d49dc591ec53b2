import PilotCore
@testable import PilotFederation
import PilotModel
import Testing

/// The typed settings: each section struct and its `keys` table describe the same keys, a config
/// decodes once into them, and the strategies get their settings from them.
@Suite("RunSettings: typed config sections")
struct RunSettingsTests {
    static let minimal = "[run]\ndata = \"d\"\nbase = \"b.h5\"\n"

    /// A config with `run` added to its [run] section and `extra` after it.
    static func config(run: String = "", _ extra: String = "") throws -> RunConfig {
        try RunConfig(file: ConfigFile(text: minimal + run + extra, path: "/tmp/x.toml"))
    }

    @Test("every section struct decodes exactly its keys table's keys, in its order (a field without a key, or a key without a field, fails)")
    func structsMatchTheSchema() throws {
        let config = try Self.config()
        for section in RunSettings.sections {
            let recorder = ConfigDecoder.Recorder()
            let values = section.name == FaultsSection.name ? config.faults : config.values
            _ = try section.init(from: ConfigDecoder(section: section.name, values: values, requested: recorder))
            var seen: [String] = []
            for k in recorder.keys where seen.last != k { seen.append(k) }   // decodeIfPresent asks twice
            #expect(seen == section.keys.map(\.name), "[\(section.name)]")
        }
        #expect(RunConfigSchema.keys.count == RunSettings.sections.map { $0.keys.count }.reduce(0, +))
    }

    @Test("defaults, given values and optional keys decode into typed fields")
    func decodes() throws {
        let s = try RunSettings(Self.config("[train]\nlr_stage2 = 2e-3\n[pilot]\nata_selection = \"same_task\"\nata_z = \"paper_literal\"\ncross_task_init = \"random\"\n[robust]\naggregator = \"krum\"\nbyzantine_f = 2\n[faults]\nnan_client = 4\n"))
        #expect(s.run.algorithm == .pilot && s.run.seed == 1 && s.run.rounds == 3 && s.run.data == "/tmp/d")
        #expect(s.run.fraction == nil && s.run.clientsPerRank == nil)
        #expect(s.train.lrStage2 == 2e-3 && s.train.lrStage1 == 1e-3 && s.train.batchSize == 16)
        #expect(s.pilot.ataSelection == .sameTask && s.pilot.ataZ == .paperLiteral && s.pilot.crossTaskInit == .random)
        #expect(s.pilot.diffNormalization == .rowL2Mean && s.pilot.clientAdapterStage2 == .frozen)
        #expect(s.robust.rule == .krum(f: 2))
        #expect(s.faults.nanClient == 4 && s.faults.killRound == nil)
        #expect(RoundSettings(s).faults.nanClient == 4 && RoundSettings(s).robust.aggregator == .krum(f: 2))
    }

    @Test("the strategy factory gives each method its section's settings and [robust]'s rule, without downcasts")
    func factory() throws {
        let fedprox = StrategyFactory.make(try RunSettings(Self.config(run: "algorithm = \"fedprox\"\n", "[fedprox]\nmu = 0.5\n[robust]\naggregator = \"median\"\n")))
        let p = try #require(fedprox as? FedProxStrategy)
        #expect(p.mu == 0.5 && p.aggregator == .median)
        let pilot = StrategyFactory.make(try RunSettings(Self.config("[pilot]\ndiff_loss = false\nata_m = 4\n[robust]\naggregator = \"trimmed_mean\"\n")))
        let s = try #require(pilot as? PilotStrategy).settings
        #expect(s.connector.lambdaDiff == 0 && s.ataM == 4 && s.aggregator == .trimmedMean(beta: 0.2))
    }

    /// Recomputation gives the same bits (PilotModelTests' RecomputeTests), so like the vision-feature
    /// cache it is a machine key: outside the effective config and its hash, so a resume may change it.
    @Test("train.recompute_activations decodes, and stays out of the run's identity")
    func recomputeIsAMachineKey() throws {
        let plain = try Self.config(), on = try Self.config("[train]\nrecompute_activations = true\n")
        #expect(RunConfigSchema.machineKeys.contains("train.recompute_activations"))
        #expect(on.machine["train.recompute_activations"] == .bool(true) && on.values["train.recompute_activations"] == nil)
        #expect(on.hash == plain.hash && !on.effectiveFile.contains("recompute_activations"))
        #expect(try RunSettings(on).train.recomputeActivations == true && RoundSettings(try RunSettings(on)).recomputeActivations)
        #expect(try RunSettings(plain).train.recomputeActivations == nil && !RoundSettings(try RunSettings(plain)).recomputeActivations)
        let off = try Self.config("[train]\nrecompute_activations = false\n")
        #expect(!RoundSettings(try RunSettings(off)).recomputeActivations && off.hash == plain.hash)
    }

    @Test("camelCase fields map onto snake_case keys")
    func keyNames() {
        #expect(ConfigDecoder.key("lrStage1") == "lr_stage1")
        #expect(ConfigDecoder.key("routerTopK") == "router_top_k")
        #expect(ConfigDecoder.key("byzantineF") == "byzantine_f")
        #expect(ConfigDecoder.key("seed") == "seed")
    }
}
