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
                      "eval.max_examples", "eval.first_example", "eval.max_new_tokens"]
        let reference = try #require(configs["pilot.toml"])
        for (name, c) in configs {
            // centralized trains one model on the union, as the paper does: one epoch over it per
            // round with a global batch near a client's (9 clients × 2 = 18 for 16), not 9 × 16.
            for key in shared where !(name == "centralized.toml" && key == "train.batch_size") {
                #expect(c.values[key] == reference.values[key], "\(scenario)/\(name): \(key) differs from pilot.toml")
            }
        }
        let central = try #require(configs["centralized.toml"])
        let global = central.int("train.batch_size") * 9, client = reference.int("train.batch_size")
        #expect(global >= client && global < 2 * client, "\(scenario)/centralized.toml: global batch \(global) vs a client's \(client)")
    }

    @Test("the tiny config is valid")
    func tiny() throws {
        _ = try RunConfig(file: ConfigFile(path: repositoryRoot + "/configs/tiny/pilot.toml"))
    }
}
