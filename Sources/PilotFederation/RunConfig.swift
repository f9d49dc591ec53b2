import Foundation
import PilotCore
import PilotModel

/// Every key a run configuration may set: its type, default, allowed range and meaning.
/// This table is the documentation (`pilot train --help-config` prints it) and the validator.
public struct ConfigKey: Sendable {
    public enum Kind: Sendable { case string([String]?), int(ClosedRange<Int>), double(ClosedRange<Double>), bool, strings([String]) }
    public let name: String
    public let kind: Kind
    public let defaultValue: ConfigFile.Value?
    public let help: String
    /// An optional key without a default: absent from the effective config when not given, so runs
    /// that do not use it keep their config hash (the `model.*` keys of a run on an imported LM).
    public var optional = false
}

public enum RunConfigSchema {
    static let big = Int.max / 4
    public static let keys: [ConfigKey] = [
        .init(name: "run.algorithm", kind: .string(["pilot", "local", "centralized", "fedavg", "fedprox", "fedadam", "shepherd", "feddpa"]),
              defaultValue: .string("pilot"),
              help: "method: pilot (the paper), local (no communication), centralized (one model on all clients' data, data-parallel), fedavg, fedprox, fedadam, shepherd (LoRA-only FedAvg), feddpa (FedDPA-T)"),
        .init(name: "run.seed", kind: .int(0...big), defaultValue: .int(1), help: "seed of every random choice (data order, initialisation)"),
        .init(name: "run.rounds", kind: .int(1...1000), defaultValue: .int(3), help: "federated rounds R; Pilot runs stage 1 in round 1 and stage 2 after"),
        .init(name: "run.data", kind: .string(nil), defaultValue: nil, help: "scenario directory written by `pilot data generate` (relative to the config file)"),
        .init(name: "run.base", kind: .string(nil), defaultValue: nil, help: "base checkpoint written by `pilot pretrain` (relative to the config file)"),
        .init(name: "run.eval_every", kind: .int(0...1000), defaultValue: .int(1), help: "evaluate every N rounds (0: only after the last round)"),
        .init(name: "run.clients_per_rank", kind: .int(0...1_000_000), defaultValue: nil,
              help: "clients each client rank hosts (trained one after another); 0 or unset: spread the K clients over the world size in contiguous blocks, so any -np from 2 to K + 1 works", optional: true),
        .init(name: "run.fraction", kind: .double(1e-9...1), defaultValue: nil,
              help: "share of the clients that train in a round (Flower's fraction_fit), a seeded sample of max(⌊fraction·K⌋, run.min_clients) drawn from (seed, round); unset: 1, every client", optional: true),
        .init(name: "run.min_clients", kind: .int(0...1_000_000), defaultValue: nil,
              help: "least clients a sampled round trains (Flower's min_fit_clients); unset: 0", optional: true),
        .init(name: "run.blas_core", kind: .string(["haswell", "skylakex", "cooperlake", "zen", "sandybridge"]), defaultValue: nil,
              help: "pin OpenBLAS's kernel (OPENBLAS_CORETYPE, set by pilot train before OpenBLAS loads): \"haswell\" gives the same bits on every x86-64 CPU with AVX2 (heterogeneous clusters, comparing with committed results), at a cost in speed on AVX-512 CPUs (docs/performance.md); unset: OpenBLAS's choice, or the environment's OPENBLAS_CORETYPE", optional: true),
        .init(name: "run.strict_reproducibility", kind: .bool, defaultValue: nil,
              help: "true: refuse to resume on another BLAS kernel or thread count than the run's checkpoints record (they would continue correctly but not bitwise); unset: warn", optional: true),
        .init(name: "model.lm", kind: .string(nil), defaultValue: nil,
              help: "the imported LM's directory on this machine (relative to the config file); its files must hash to what the base checkpoint recorded. Default: the path the base recorded", optional: true),
        .init(name: "model.vision_tower", kind: .string(nil), defaultValue: nil,
              help: "the CLIP vision tower's directory on this machine (relative to the config file), for a base pretrained with --vision-tower; its files must hash to what the base recorded. Default: the path the base recorded", optional: true),
        .init(name: "model.lora_rank", kind: .int(1...4096), defaultValue: nil,
              help: "LoRA rank r on the LM (default: the base's, 16; the paper uses 64)", optional: true),
        .init(name: "model.lora_alpha", kind: .double(1e-6...1e6), defaultValue: nil,
              help: "LoRA alpha; the update is scaled by alpha/r (default: 2·r when lora_rank is given, else the base's, 32)", optional: true),
        .init(name: "model.lora_targets", kind: .strings(ModelConfig.allLoRATargets), defaultValue: nil,
              help: "linears that get LoRA, e.g. [\"q\", \"v\"] (default: all seven, q k v o gate up down)", optional: true),
        .init(name: "train.epochs", kind: .int(1...1000), defaultValue: .int(1), help: "local epochs E per round"),
        .init(name: "train.max_steps", kind: .int(0...big), defaultValue: .int(0), help: "cap on local steps per round (0: no cap)"),
        .init(name: "train.batch_size", kind: .int(1...512), defaultValue: .int(16), help: "local batch size"),
        .init(name: "train.lr", kind: .double(1e-9...1), defaultValue: .double(1e-3), help: "learning rate of the baselines"),
        .init(name: "train.lr_stage1", kind: .double(1e-9...1), defaultValue: .double(1e-3), help: "Pilot stage-1 learning rate (paper: 2e-5 at full size)"),
        .init(name: "train.lr_stage2", kind: .double(1e-9...1), defaultValue: .double(1e-3), help: "Pilot stage-2 learning rate (paper: 4e-5 at full size)"),
        .init(name: "train.warmup_steps", kind: .int(0...big), defaultValue: .int(0), help: "linear warm-up steps at the start of each round"),
        .init(name: "train.weight_decay", kind: .double(0...10), defaultValue: .double(0), help: "AdamW decoupled weight decay"),
        .init(name: "train.max_grad_norm", kind: .double(0...1e6), defaultValue: .double(1), help: "global-norm gradient clipping (0: off)"),
        .init(name: "pilot.lambda_diff", kind: .double(0...1e3), defaultValue: .double(0.1), help: "λ0, weight of the stage-1 difference loss"),
        .init(name: "pilot.lambda_balance", kind: .double(0...1e3), defaultValue: .double(0.1), help: "λ1, weight of the load-balance loss"),
        .init(name: "pilot.lambda_z", kind: .double(0...1e3), defaultValue: .double(0.01), help: "λ2, weight of the router z-loss"),
        .init(name: "pilot.diff_normalization", kind: .string(["row_l2_mean", "raw_frobenius"]), defaultValue: .string("row_l2_mean"),
              help: "difference loss on row-normalised features (default) or raw Frobenius"),
        .init(name: "pilot.router_top_k", kind: .int(0...64), defaultValue: .int(0), help: "0: dense softmax router over all T (official); k: top-k with renormalisation"),
        .init(name: "pilot.client_adapter_stage2", kind: .string(["frozen", "dropped", "trainable"]), defaultValue: .string("frozen"),
              help: "client adapter in stage 2: kept in the sum and frozen (default), dropped (official code), or trained"),
        .init(name: "pilot.cross_task", kind: .bool, defaultValue: .bool(true), help: "ablation: false removes the cross-task adapters (zero and frozen)"),
        .init(name: "pilot.cross_task_init", kind: .string(["copy", "random"]), defaultValue: .string("copy"), help: "cross-task adapter init (Table 6)"),
        .init(name: "pilot.diff_loss", kind: .bool, defaultValue: .bool(true), help: "ablation: false sets λ0 = 0"),
        .init(name: "pilot.aux_losses", kind: .bool, defaultValue: .bool(true), help: "ablation: false sets λ1 = λ2 = 0"),
        .init(name: "pilot.ata", kind: .bool, defaultValue: .bool(true), help: "adaptive text-adapter aggregation; false: n_k-weighted average of LoRA"),
        .init(name: "pilot.ata_selection", kind: .string(["top_m", "same_task", "all"]), defaultValue: .string("top_m"),
              help: "ATA neighbour set (Table 5): the M nearest clients of any task, same-task clients, or all clients"),
        .init(name: "pilot.ata_m", kind: .int(1...10_000), defaultValue: .int(6), help: "M of top-M (paper: 6 of 8 other clients)"),
        .init(name: "pilot.ata_z", kind: .string(["normalised", "paper_literal"]), defaultValue: .string("normalised"),
              help: "Z of Eq. 12: weights summing to one (default) or as printed (n_k + Σ n_k')"),
        .init(name: "fedprox.mu", kind: .double(0...1e6), defaultValue: .double(0.01), help: "μ of FedProx's proximal term (μ/2)‖w − w_global‖²"),
        .init(name: "fedadam.eta", kind: .double(1e-9...10), defaultValue: .double(1e-2), help: "FedAdam server learning rate η"),
        .init(name: "fedadam.beta1", kind: .double(0...0.999_999), defaultValue: .double(0.9), help: "FedAdam server β1"),
        .init(name: "fedadam.beta2", kind: .double(0...0.999_999), defaultValue: .double(0.99), help: "FedAdam server β2"),
        .init(name: "fedadam.tau", kind: .double(1e-12...1), defaultValue: .double(1e-3), help: "FedAdam adaptivity τ (the denominator guard)"),
        .init(name: "fedadam.bias_correction", kind: .bool, defaultValue: .bool(false),
              help: "false: the paper's step (Reddi et al.); true: Flower's bias-corrected step η·√(1−β2^(t+1))/(1−β1^(t+1))"),
        .init(name: "feddpa.support", kind: .int(1...4096), defaultValue: .int(5),
              help: "FedDPA-T inference: local training prompts whose last-token states weigh the local LoRA per test instance"),
        .init(name: "robust.max_update_norm", kind: .double(0...1e30), defaultValue: nil,
              help: "bound on each update's L2 distance from the coordinate-wise median of the round's updates of the same layout, checked at the server; unset: no bound", optional: true),
        .init(name: "robust.on_bad", kind: .string(["reject", "clip"]), defaultValue: nil,
              help: "an update beyond robust.max_update_norm is rejected (default) or clipped back to the bound around the median", optional: true),
        .init(name: "robust.aggregator", kind: .string(["mean", "median", "trimmed_mean", "krum", "multi_krum"]), defaultValue: nil,
              help: "every strategy's averaging step: the n_k-weighted mean (default), Flower's FedMedian, FedTrimmedAvg, Krum or multi-Krum", optional: true),
        .init(name: "robust.trim", kind: .double(0...0.4999), defaultValue: nil, help: "trimmed_mean: share cut from each end per coordinate (Flower's beta); unset: 0.2", optional: true),
        .init(name: "robust.byzantine_f", kind: .int(0...1_000_000), defaultValue: nil, help: "krum, multi_krum: the number f of Byzantine clients tolerated; unset: 1", optional: true),
        .init(name: "robust.krum_m", kind: .int(1...1_000_000), defaultValue: nil, help: "multi_krum: the clients kept and averaged; unset: 2", optional: true),
        .init(name: "dp.clip", kind: .double(1e-12...1e12), defaultValue: nil,
              help: "client-level DP (DP-FedAvg): each client's update (the change of what it sends during the round) is clipped to this L2 norm before it leaves the client; unset: no DP", optional: true),
        .init(name: "dp.noise_multiplier", kind: .double(0...1e6), defaultValue: nil,
              help: "σ: the server adds N(0, (σ·dp.clip)²) to every coordinate of every clipped update, seeded by (seed, round, client); unset: 1", optional: true),
        .init(name: "dp.delta", kind: .double(1e-15...0.1), defaultValue: nil, help: "δ at which the RDP accountant reports ε after every round; unset: 1e-5", optional: true),
        .init(name: "faults.nan_client", kind: .int(0...1_000_000), defaultValue: nil, help: "fault injection (tests): this client's trained parameters get a NaN (every round, or faults.nan_round)", optional: true),
        .init(name: "faults.nan_round", kind: .int(1...1000), defaultValue: nil, help: "fault injection: the round of faults.nan_client (unset: every round)", optional: true),
        .init(name: "faults.scale_client", kind: .int(0...1_000_000), defaultValue: nil, help: "fault injection: this client's trained parameters are multiplied by faults.scale_factor every round", optional: true),
        .init(name: "faults.scale_factor", kind: .double(-1e30...1e30), defaultValue: nil, help: "fault injection: the factor of faults.scale_client (unset: 1e6)", optional: true),
        .init(name: "faults.fail_client", kind: .int(0...1_000_000), defaultValue: nil, help: "fault injection: this client's training throws (in faults.fail_round, or every round)", optional: true),
        .init(name: "faults.fail_round", kind: .int(1...1000), defaultValue: nil, help: "fault injection: the round of faults.fail_client (unset: every round)", optional: true),
        .init(name: "faults.kill_point", kind: .string(["after_client_files", "after_round_file", "after_latest", "after_metrics"]), defaultValue: nil,
              help: "fault injection: every rank kills itself (SIGKILL) at this point of round faults.kill_round's commit", optional: true),
        .init(name: "faults.kill_round", kind: .int(1...1000), defaultValue: nil, help: "fault injection: the round of faults.kill_point (unset: 1)", optional: true),
        .init(name: "eval.max_examples", kind: .int(1...1_000_000), defaultValue: .int(200), help: "test examples each client scores (from its task's test split)"),
        .init(name: "eval.first_example", kind: .int(0...1_000_000), defaultValue: .int(0),
              help: "index of the first test example scored: 0 for the reported scores, e.g. 200 for a held-out slice that tunes learning rates"),
        .init(name: "eval.max_new_tokens", kind: .int(1...64), defaultValue: .int(16), help: "greedy decoding length cap"),
        .init(name: "eval.fraction", kind: .double(1e-9...1), defaultValue: nil,
              help: "share of the clients scored in an intermediate evaluation round, a seeded sample (at least one client); the last round scores every client. Unset: 1, every client", optional: true),
        .init(name: "eval.batch_size", kind: .int(1...512), defaultValue: .int(32), help: "evaluation batch size"),
    ]

    public static func key(_ name: String) -> ConfigKey? { keys.first { $0.name == name } }

    /// "did you mean" for an unknown key: the closest valid key by edit distance.
    public static func suggestion(for name: String) -> String? {
        let tail = String(name.split(separator: ".").last ?? "")
        let scored = keys.map { key -> (String, Int) in
            let keyTail = String(key.name.split(separator: ".").last ?? "")
            return (key.name, min(editDistance(key.name, name), editDistance(keyTail, tail)))
        }
        guard let best = scored.min(by: { $0.1 < $1.1 }), best.1 <= max(2, tail.count / 3) else { return nil }
        return best.0
    }
}

/// A validated run configuration: every key of the schema with a value (given or default).
public struct RunConfig: Sendable, Equatable {
    public let values: [String: ConfigFile.Value]
    /// The `faults.*` keys (fault injection for tests): not part of the run's identity, so they are
    /// not in `values`, the effective file or the hash, and a resume may change or drop them.
    public var faults: [String: ConfigFile.Value] = [:]
    /// The file as written (stored in checkpoints with its hash).
    public let sourceText: String
    public let sourcePath: String

    /// Parses and validates; every problem is collected and reported together, each with its line.
    public init(file: ConfigFile) throws {
        var problems: [String] = []
        var values: [String: ConfigFile.Value] = [:]
        for (name, entry) in file.entries {
            guard let key = RunConfigSchema.key(name) else {
                let hint = RunConfigSchema.suggestion(for: name).map { "; did you mean '\($0)'?" } ?? ""
                problems.append("\(file.path):\(entry.line): unknown key '\(name)'\(hint)")
                continue
            }
            if let problem = Self.check(key, entry.value) {
                problems.append("\(file.path):\(entry.line): \(name) \(problem)")
            } else {
                values[name] = Self.normalise(key, entry.value)
                if Self.pathKeys.contains(name), case let .string(p) = entry.value {
                    values[name] = .string(Self.resolve(p, relativeTo: file.path))
                }
            }
        }
        for key in RunConfigSchema.keys where values[key.name] == nil && !key.optional {
            if let d = key.defaultValue {
                values[key.name] = d
            } else if !problems.contains(where: { $0.contains(" \(key.name) ") }) {
                problems.append("\(file.path): required key '\(key.name)' is missing (\(key.help))")
            }
        }
        if !problems.isEmpty {
            throw PilotError.message("invalid config:\n  " + problems.joined(separator: "\n  "))
        }
        self.values = values.filter { !$0.key.hasPrefix("faults.") }
        faults = values.filter { $0.key.hasPrefix("faults.") }
        sourceText = file.text
        sourcePath = file.path
    }

    /// Keys holding paths: stored resolved (absolute, relative to the config file's directory), so
    /// the copy in the run directory and a resumed run mean the same files.
    static let pathKeys: Set<String> = ["run.data", "run.base", "model.lm", "model.vision_tower"]

    static func resolve(_ p: String, relativeTo configPath: String) -> String {
        if p.hasPrefix("/") { return URL(fileURLWithPath: p).standardizedFileURL.path }
        let dir = URL(fileURLWithPath: configPath).deletingLastPathComponent()
        return dir.appendingPathComponent(p).standardizedFileURL.path
    }

    static func check(_ key: ConfigKey, _ v: ConfigFile.Value) -> String? {
        switch (key.kind, v) {
        case let (.string(choices), .string(s)):
            if let choices, !choices.contains(s) { return "is \"\(s)\"; choose one of \(choices.map { "\"\($0)\"" }.joined(separator: ", "))" }
            if s.isEmpty { return "must not be empty" }
            return nil
        case let (.int(range), .int(i)):
            return range.contains(i) ? nil : "is \(i); it must be in \(range.lowerBound)...\(range.upperBound == RunConfigSchema.big ? "∞" : "\(range.upperBound)")"
        case let (.double(range), .double(d)):
            return range.contains(d) ? nil : "is \(d); it must be in \(range.lowerBound)...\(range.upperBound)"
        case let (.double(range), .int(i)):
            return range.contains(Double(i)) ? nil : "is \(i); it must be in \(range.lowerBound)...\(range.upperBound)"
        case (.bool, .bool):
            return nil
        case let (.strings(choices), .array(items)):
            var seen: Set<String> = []
            for item in items {
                guard case let .string(x) = item else { return "has a \(item.typeName) \(item) in its list; expected strings in double quotes" }
                guard choices.contains(x) else { return "has \"\(x)\"; choose from \(choices.map { "\"\($0)\"" }.joined(separator: ", "))" }
                guard seen.insert(x).inserted else { return "lists \"\(x)\" twice" }
            }
            return items.isEmpty ? "is empty; leave the key out for the default" : nil
        default:
            return "has the wrong type: \(v.typeName) \(v), expected \(Self.typeName(key.kind))"
        }
    }

    static func typeName(_ k: ConfigKey.Kind) -> String {
        switch k {
        case .string(let c): return c.map { "one of " + $0.map { "\"\($0)\"" }.joined(separator: ", ") } ?? "a string in double quotes"
        case .int: return "an integer"
        case .double: return "a number"
        case .bool: return "true or false"
        case .strings(let c): return "a list of strings from " + c.map { "\"\($0)\"" }.joined(separator: ", ")
        }
    }

    static func normalise(_ key: ConfigKey, _ v: ConfigFile.Value) -> ConfigFile.Value {
        if case .double = key.kind, case let .int(i) = v { return .double(Double(i)) }
        return v
    }

    public func string(_ k: String) -> String { if case let .string(s)? = values[k] { return s }; fatalError("config key \(k) is not a string") }
    public func int(_ k: String) -> Int { if case let .int(i)? = values[k] { return i }; fatalError("config key \(k) is not an integer") }
    public func double(_ k: String) -> Double { if case let .double(d)? = values[k] { return d }; fatalError("config key \(k) is not a number") }
    public func bool(_ k: String) -> Bool { if case let .bool(b)? = values[k] { return b }; fatalError("config key \(k) is not a boolean") }

    /// A path from the config (already resolved against the config file's directory).
    public func path(_ k: String) -> String { string(k) }
    /// An optional key's value (nil when the config does not give it).
    public func optionalString(_ k: String) -> String? { if case let .string(s)? = values[k] ?? faults[k] { return s }; return nil }
    public func optionalBool(_ k: String) -> Bool? { if case let .bool(b)? = values[k] ?? faults[k] { return b }; return nil }
    public func optionalInt(_ k: String) -> Int? { if case let .int(i)? = values[k] ?? faults[k] { return i }; return nil }
    public func optionalDouble(_ k: String) -> Double? {
        switch values[k] ?? faults[k] {
        case let .double(d)?: return d
        case let .int(i)?: return Double(i)
        default: return nil
        }
    }
    public func optionalStrings(_ k: String) -> [String]? {
        guard case let .array(a)? = values[k] else { return nil }
        return a.compactMap { if case let .string(s) = $0 { return s } else { return nil } }
    }

    /// The model settings a run may change on the base's model: LoRA rank, alpha and targets.
    public var modelOverrides: ModelOverrides {
        ModelOverrides(loraRank: optionalInt("model.lora_rank"), loraAlpha: optionalDouble("model.lora_alpha").map(Float.init),
                       loraTargets: optionalStrings("model.lora_targets"))
    }

    /// The effective configuration as a config file (sections, every key), which reads back to
    /// the same values: what the run directory keeps as config.toml.
    public var effectiveFile: String {
        var out = "# Effective configuration of this run (every key, paths resolved); written by pilot train.\n"
        var section = ""
        for key in values.keys.sorted() {
            let parts = key.split(separator: ".", maxSplits: 1).map(String.init)
            if parts[0] != section { section = parts[0]; out += "\n[\(section)]\n" }
            out += "\(parts[1]) = \(Self.render(values[key]!))\n"
        }
        return out
    }

    static func render(_ v: ConfigFile.Value) -> String {
        switch v {
        case .string(let s): return "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
        case .double(let d): return d == d.rounded() && abs(d) < 1e15 ? String(format: "%.1f", d) : "\(d)"
        case .array(let a): return "[" + a.map(render).joined(separator: ", ") + "]"
        default: return v.description
        }
    }

    /// SHA-256 of the effective configuration (what resume compares).
    public var hash: String { SHA256.hex(Array(effectiveFile.utf8)) }

    /// Keys whose effective values differ from another configuration's.
    public func differences(from other: RunConfig) -> [String] {
        Set(values.keys).union(other.values.keys).sorted().filter { values[$0] != other.values[$0] }
            .map { "\($0): \(other.values[$0]?.description ?? "unset") → \(values[$0]?.description ?? "unset")" }
    }

    /// Parses the effective configuration stored in a checkpoint back (all keys present).
    public init(effectiveFile text: String, path: String) throws {
        try self.init(file: ConfigFile(text: text, path: path))
    }
}
