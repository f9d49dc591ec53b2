import Foundation
import PilotFederation
import PilotTestSupport
import Testing

/// Every config in configs/ is valid, and the scenario configs of one scenario give every method the
/// same data, rounds and local-training budget (DESIGN §4: a fair comparison).
@Suite("Shipped configs")
struct ShippedConfigTests {
    static func configs(_ scenario: String) throws -> [String: RunConfig] {
        let dir = repositoryRoot + "/configs/" + scenario
        var out: [String: RunConfig] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: dir) where name.hasSuffix(".toml") {
            out[name] = try RunConfig(file: ConfigFile(path: dir + "/" + name))
        }
        return out
    }

    @Test("each scenario has a config for every method, all valid", arguments: ["vu", "gvqa"])
    func everyMethod(scenario: String) throws {
        let configs = try Self.configs(scenario)
        let methods = Set(configs.values.map { $0.string("run.algorithm") })
        #expect(methods == ["pilot", "local", "centralized", "fedavg", "fedprox", "fedadam", "shepherd", "feddpa"])
        for (name, c) in configs { #expect(name == c.string("run.algorithm") + ".toml") }
    }

    @Test("every method of a scenario gets the same data, rounds, seed, local steps and evaluation", arguments: ["vu", "gvqa"])
    func sameBudget(scenario: String) throws {
        let configs = try Self.configs(scenario)
        let shared = ["run.data", "run.base", "run.rounds", "run.seed", "run.eval_every", "train.epochs", "train.batch_size",
                      "train.max_steps", "train.warmup_steps", "train.max_grad_norm", "train.weight_decay",
                      "eval.max_examples", "eval.max_new_tokens"]
        let reference = try #require(configs["pilot.toml"])
        for (name, c) in configs {
            for key in shared { #expect(c.values[key] == reference.values[key], "\(scenario)/\(name): \(key) differs from pilot.toml") }
        }
    }

    @Test("the tiny config is valid")
    func tiny() throws {
        _ = try RunConfig(file: ConfigFile(path: repositoryRoot + "/configs/tiny/pilot.toml"))
    }
}
