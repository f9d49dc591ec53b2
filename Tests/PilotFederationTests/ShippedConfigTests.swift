import Foundation
import PilotFederation
import PilotModel
import PilotTestSupport
import Testing

/// Every config in configs/ is valid, and the scenario configs of one scenario give every method the
/// same data, rounds and local-training budget (docs/design.md §4: a fair comparison).
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

    @Test("each scenario has a config for every method, all valid", arguments: ["vu", "gvqa", "vu2", "gvqa2"])
    func everyMethod(scenario: String) throws {
        let configs = try Self.configs(scenario)
        let methods = Set(try configs.values.map { try RunSettings($0).run.algorithm.rawValue })
        #expect(methods == ["pilot", "local", "centralized", "fedavg", "fedprox", "fedadam", "shepherd", "feddpa"])
        for (name, c) in configs {
            let algorithm = try RunSettings(c).run.algorithm.rawValue
            #expect(name == algorithm + ".toml")
        }
    }

    @Test("every method of a scenario gets the same data, rounds, seed, local steps and evaluation", arguments: ["vu", "gvqa", "vu2", "gvqa2"])
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
        let global = try RunSettings(central).train.batchSize * 9, client = try RunSettings(reference).train.batchSize
        #expect(global >= client && global < 2 * client, "\(scenario)/centralized.toml: global batch \(global) vs a client's \(client)")
    }

    @Test("the SmolLM2 configs: every method, valid, on the LM, with the same budget", arguments: ["vu-smollm2", "tiny-smollm2"])
    func smolLM2(scenario: String) throws {
        let configs = try Self.configs(scenario)
        #expect(Set(try configs.values.map { try RunSettings($0).run.algorithm.rawValue }) == ["pilot", "local", "centralized", "fedavg", "fedprox", "fedadam", "shepherd", "feddpa"])
        let reference = try #require(configs["pilot.toml"])
        for (name, c) in configs {
            let lm = try RunSettings(c).model.lm
            #expect(lm?.hasSuffix("/models/smollm2-135m-instruct") == true, "\(name)")
            for key in ["run.data", "run.base", "run.rounds", "run.seed", "model.lm", "model.lora_rank", "model.lora_targets",
                        "train.max_steps", "eval.max_examples", "eval.max_new_tokens"] {
                #expect(c.values[key] == reference.values[key], "\(scenario)/\(name): \(key) differs from pilot.toml")
            }
        }
    }

    @Test("optional [model] keys stay out of the effective config when absent, so older runs keep their hash")
    func optionalModelKeys() throws {
        let plain = try RunConfig(file: ConfigFile(text: "[run]\ndata = \"d\"\nbase = \"b.h5\"\n", path: "/tmp/x.toml"))
        let plainOverrides = try RunSettings(plain).modelOverrides
        #expect(!plain.effectiveFile.contains("[model]") && plainOverrides == ModelOverrides())
        let lora = try RunConfig(file: ConfigFile(text: "[run]\ndata = \"d\"\nbase = \"b.h5\"\n[model]\nlora_rank = 8\nlora_targets = [\"v\", \"q\"]\n", path: "/tmp/x.toml"))
        let overrides = try RunSettings(lora).modelOverrides
        #expect(overrides == ModelOverrides(loraRank: 8, loraTargets: ["v", "q"]))
        let c = overrides.apply(to: .tiny)
        #expect(c.loraRank == 8 && c.loraAlpha == 16 && c.loraTargets == ["q", "v"])
        let back = try RunConfig(effectiveFile: lora.effectiveFile, path: "/tmp/y.toml")
        #expect(back.values == lora.values)
        for (bad, needle) in [("lora_targets = [\"q_proj\"]", "q_proj"), ("lora_targets = []", "empty"), ("lora_targets = [\"q\", \"q\"]", "twice"),
                              ("lora_rank = 0", "lora_rank"), ("lora_rnk = 8", "did you mean 'model.lora_rank'")] {
            do { _ = try RunConfig(file: ConfigFile(text: "[run]\ndata = \"d\"\nbase = \"b.h5\"\n[model]\n\(bad)\n", path: "/tmp/x.toml")); Issue.record("accepted \(bad)") } catch {
                #expect("\(error)".contains(needle), "\(error)")
            }
        }
    }

    @Test("a task-version-2 config differs from its scenario's only in the data and the base", arguments: ["vu", "gvqa"])
    func versionTwoChangesOnlyTheData(scenario: String) throws {
        let v1 = try Self.configs(scenario), v2 = try Self.configs(scenario + "2")
        #expect(Set(v1.keys) == Set(v2.keys))
        for (name, a) in v1 {
            let b = try #require(v2[name])
            #expect(Set(a.values.keys) == Set(b.values.keys), "\(name): other keys")
            for (key, value) in a.values where !["run.data", "run.base"].contains(key) {
                #expect(b.values[key] == value, "\(scenario)2/\(name): \(key) differs from \(scenario)/\(name)")
            }
            let run = try RunSettings(b).run
            #expect(run.data.hasSuffix("/data/\(scenario)2"), "\(run.data)")
            #expect(run.base.hasSuffix("/data/\(scenario)2/base.h5"), "\(run.base)")
        }
    }

    @Test("the tiny config is valid")
    func tiny() throws {
        _ = try RunConfig(file: ConfigFile(path: repositoryRoot + "/configs/tiny/pilot.toml"))
    }
}
