import PilotModel
import PilotTensor

// Every section of a run configuration, decoded once (`RunSettings`). Each struct has one field per
// key of its `keys`, in the same order, named as the key in camelCase (`lr_stage1` → `lrStage1`);
// `keys` gives each key its type, range, default and meaning, and is what validates a config and
// what `pilot train --list-keys` prints. An optional key (no default) is an optional field.

/// `[run]`: the run: method, seed, rounds, inputs, placement and sampling.
public struct RunSection: ConfigSection {
    public static let name = "run"
    public var algorithm: Algorithm
    public var seed: Int
    public var rounds: Int
    public var data: String
    public var base: String
    public var evalEvery: Int
    public var clientsPerRank: Int?
    public var fraction: Double?
    public var minClients: Int?
    public var blasCore: String?
    public var strictReproducibility: Bool?

    public static let keys: [ConfigKey] = [
        .init(name: "run.algorithm", kind: .string(Algorithm.allCases.map(\.rawValue)),
              defaultValue: .string("pilot"),
              help: "method: pilot (the paper), local (no communication), centralized (one model on all clients' data, data-parallel), fedavg, fedprox, fedadam, shepherd (FedAvg of LoRA; each client also trains its own connector), shepherd_lora (Shepherd as published: FedAvg of LoRA, the connector frozen at the base), feddpa (FedDPA-T)"),
        .init(name: "run.seed", kind: .int(0...RunConfigSchema.big), defaultValue: .int(1), help: "seed of every random choice (data order, initialisation)"),
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
    ]
}

/// `[model]`: what a run changes on the base model (LoRA) and where this machine keeps the imported LM and tower.
public struct ModelSection: ConfigSection {
    public static let name = "model"
    public var lm: String?
    public var visionTower: String?
    public var loraRank: Int?
    public var loraRanks: [Int]?
    public var loraAlpha: Double?
    public var loraTargets: [String]?
    public var cacheVisionFeatures: Bool?
    public var shareBase: Bool?
    public var weightsCache: String?
    public var baseDtype: BaseDType?

    public static let keys: [ConfigKey] = [
        .init(name: "model.lm", kind: .string(nil), defaultValue: nil,
              help: "the imported LM's directory on this machine (relative to the config file); its files must hash to what the base checkpoint recorded. Default: the path the base recorded", optional: true),
        .init(name: "model.vision_tower", kind: .string(nil), defaultValue: nil,
              help: "the CLIP vision tower's directory on this machine (relative to the config file), for a base pretrained with --vision-tower; its files must hash to what the base recorded. Default: the path the base recorded", optional: true),
        .init(name: "model.lora_rank", kind: .int(1...4096), defaultValue: nil,
              help: "LoRA rank r on the LM (default: the base's, 16; the paper uses 64)", optional: true),
        .init(name: "model.lora_ranks", kind: .ints(1...4096), defaultValue: nil,
              help: "each client's own LoRA rank, one per client in client order, e.g. [4, 8, 16, 4, 8, 16, 4, 8, 16] (HetLoRA: the server zero-pads the factors to the largest rank, aggregates, and each client keeps its leading r_k components; Pilot's ATA compares the effective updates (α_k/r_k)·A_k·B_k; docs/baselines.md). Alpha: model.lora_alpha for every client, else 2·r_k. Not with model.lora_rank; centralized and feddpa need one rank for all. Unset: one rank for all", optional: true),
        .init(name: "model.lora_alpha", kind: .double(1e-6...1e6), defaultValue: nil,
              help: "LoRA alpha; the update is scaled by alpha/r (default: 2·r when lora_rank is given, else the base's, 32)", optional: true),
        .init(name: "model.lora_targets", kind: .strings(ModelConfig.allLoRATargets), defaultValue: nil,
              help: "linears that get LoRA, e.g. [\"q\", \"v\"] (default: all seven, q k v o gate up down)", optional: true),
        .init(name: "model.cache_vision_features", kind: .bool, defaultValue: nil,
              help: "with a CLIP vision tower: compute its output once per image into a cache beside each shard (<shard>.vision-<tower sha256[:16]>.h5, rebuilt when the tower, the feature layer, the images or the BLAS kernel change) and read it every round, with the same bits as computing it in-line; false: run the tower in every round. Unset: true with a CLIP tower (the built-in ViT is never cached)", optional: true),
        .init(name: "model.share_base", kind: .bool, defaultValue: nil,
              help: "true or unset: the client ranks of a node map one prepared copy of the imported LM's weights (one rank per node writes it into model.weights_cache), so the node holds the frozen LM once; false: every rank loads its own copy. The results are the same bits either way", optional: true),
        .init(name: "model.weights_cache", kind: .string(nil), defaultValue: nil,
              help: "directory for the node's prepared copy of the LM's weights (relative to the config file); give a node-local disk on a cluster whose shared file system maps files slowly (Lustre, NFS). Unset: <model.lm>/.pilot-cache", optional: true),
        .init(name: "model.base_dtype", kind: .string(BaseDType.allCases.map(\.rawValue)), defaultValue: nil,
              help: "the frozen LM's matrices in f32 (4 bytes a weight), bf16 (2: bfloat16, rounded to nearest even) or q8 (1.0625: GGUF's Q8_0, blocks of 32 int8 with an f16 scale); LoRA, the connector, the optimizer and every gradient stay f32. It changes the results, so a resume must keep it. Unset: the base checkpoint's (f32)", optional: true),
    ]
}

/// `[train]`: every client's local training.
public struct TrainSection: ConfigSection {
    public static let name = "train"
    public var epochs: Int
    public var maxSteps: Int
    public var batchSize: Int
    public var lr: Double
    public var lrStage1: Double
    public var lrStage2: Double
    public var warmupSteps: Int
    public var weightDecay: Double
    public var maxGradNorm: Double
    public var recomputeActivations: Bool?

    public static let keys: [ConfigKey] = [
        .init(name: "train.epochs", kind: .int(1...1000), defaultValue: .int(1), help: "local epochs E per round"),
        .init(name: "train.max_steps", kind: .int(0...RunConfigSchema.big), defaultValue: .int(0), help: "cap on local steps per round (0: no cap)"),
        .init(name: "train.batch_size", kind: .int(1...512), defaultValue: .int(16), help: "local batch size"),
        .init(name: "train.lr", kind: .double(1e-9...1), defaultValue: .double(1e-3), help: "learning rate of the baselines"),
        .init(name: "train.lr_stage1", kind: .double(1e-9...1), defaultValue: .double(1e-3), help: "Pilot stage-1 learning rate (paper: 2e-5 at full size)"),
        .init(name: "train.lr_stage2", kind: .double(1e-9...1), defaultValue: .double(1e-3), help: "Pilot stage-2 learning rate (paper: 4e-5 at full size)"),
        .init(name: "train.warmup_steps", kind: .int(0...RunConfigSchema.big), defaultValue: .int(0), help: "linear warm-up steps at the start of each round"),
        .init(name: "train.weight_decay", kind: .double(0...10), defaultValue: .double(0), help: "AdamW decoupled weight decay"),
        .init(name: "train.max_grad_norm", kind: .double(0...1e6), defaultValue: .double(1), help: "global-norm gradient clipping (0: off)"),
        .init(name: "train.recompute_activations", kind: .bool, defaultValue: nil,
              help: "true: the LM keeps only each layer's input from the forward pass and recomputes the layer just before its backward (transformers' gradient checkpointing): the stored activations shrink from every layer's to one layer's plus the layer inputs, for about one more forward pass per step; the same bits either way. Unset: false", optional: true),
    ]
}

/// `[pilot]`: Pilot's connector losses, cross-task adapters and ATA (the paper's ablations).
public struct PilotSection: ConfigSection {
    public static let name = "pilot"
    public var lambdaDiff: Double
    public var lambdaBalance: Double
    public var lambdaZ: Double
    public var diffNormalization: DifferenceLoss.Normalization
    public var routerTopK: Int
    public var clientAdapterStage2: ConnectorOptions.ClientAdapterInStage2
    public var crossTask: Bool
    public var crossTaskInit: ConnectorOptions.CrossTaskInit
    public var diffLoss: Bool
    public var auxLosses: Bool
    public var ata: Bool
    public var ataSelection: ATASelection
    public var ataM: Int
    public var ataZ: ATANormalisation
    public var psiSInit: PsiSInit?
    public var psiSNoise: Double?

    public static let keys: [ConfigKey] = [
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
        .init(name: "pilot.psi_s_init", kind: .string(PsiSInit.allCases.map(\.rawValue)), defaultValue: nil,
              help: "stage 1's client adapter ψs: a copy of the pretrained MLP like ψt (the paper; then ψt and ψs stay identical and the difference loss does nothing, docs/baselines.md), \"perturbed\" (the copy plus seeded Gaussian noise of pilot.psi_s_noise × each tensor's RMS, per client), which breaks the symmetry; a deviation from the paper. Unset: copy", optional: true),
        .init(name: "pilot.psi_s_noise", kind: .double(1e-12...10), defaultValue: nil,
              help: "pilot.psi_s_init = \"perturbed\": the noise's std relative to each ψs tensor's RMS; unset: 0.1", optional: true),
    ]
}

/// `[fedprox]`: FedProx.
public struct FedProxSection: ConfigSection {
    public static let name = "fedprox"
    public var mu: Double

    public static let keys: [ConfigKey] = [
        .init(name: "fedprox.mu", kind: .double(0...1e6), defaultValue: .double(0.01), help: "μ of FedProx's proximal term (μ/2)‖w − w_global‖²"),
    ]
}

/// `[fedadam]`: FedAdam's server optimiser.
public struct FedAdamSection: ConfigSection {
    public static let name = "fedadam"
    public var eta: Double
    public var beta1: Double
    public var beta2: Double
    public var tau: Double
    public var biasCorrection: Bool

    public static let keys: [ConfigKey] = [
        .init(name: "fedadam.eta", kind: .double(1e-9...10), defaultValue: .double(1e-2), help: "FedAdam server learning rate η"),
        .init(name: "fedadam.beta1", kind: .double(0...0.999_999), defaultValue: .double(0.9), help: "FedAdam server β1"),
        .init(name: "fedadam.beta2", kind: .double(0...0.999_999), defaultValue: .double(0.99), help: "FedAdam server β2"),
        .init(name: "fedadam.tau", kind: .double(1e-12...1), defaultValue: .double(1e-3), help: "FedAdam adaptivity τ (the denominator guard)"),
        .init(name: "fedadam.bias_correction", kind: .bool, defaultValue: .bool(false),
              help: "false: the paper's step (Reddi et al.); true: Flower's bias-corrected step η·√(1−β2^(t+1))/(1−β1^(t+1))"),
    ]
}

/// `[feddpa]`: FedDPA-T's inference.
public struct FedDPASection: ConfigSection {
    public static let name = "feddpa"
    public var support: Int

    public static let keys: [ConfigKey] = [
        .init(name: "feddpa.support", kind: .int(1...4096), defaultValue: .int(5),
              help: "FedDPA-T inference: local training prompts whose last-token states weigh the local LoRA per test instance"),
    ]
}

/// `[robust]`: what the server checks and how it averages.
public struct RobustSection: ConfigSection {
    /// Every strategy's averaging step, from `aggregator` and its parameters.
    public var rule: RobustAggregator {
        switch aggregator ?? "mean" {
        case "median": return .median
        case "trimmed_mean": return .trimmedMean(beta: trim ?? 0.2)
        case "krum": return .krum(f: byzantineF ?? 1)
        case "multi_krum": return .multiKrum(f: byzantineF ?? 1, m: krumM ?? 2)
        default: return .mean
        }
    }
    public static let name = "robust"
    public var maxUpdateNorm: Double?
    public var onBad: String?
    public var aggregator: String?
    public var trim: Double?
    public var byzantineF: Int?
    public var krumM: Int?

    public static let keys: [ConfigKey] = [
        .init(name: "robust.max_update_norm", kind: .double(0...1e30), defaultValue: nil,
              help: "bound on each update's L2 distance from the coordinate-wise median of the round's updates of the same layout, checked at the server; unset: no bound", optional: true),
        .init(name: "robust.on_bad", kind: .string(["reject", "clip"]), defaultValue: nil,
              help: "an update beyond robust.max_update_norm is rejected (default) or clipped back to the bound around the median", optional: true),
        .init(name: "robust.aggregator", kind: .string(["mean", "median", "trimmed_mean", "krum", "multi_krum"]), defaultValue: nil,
              help: "every strategy's averaging step: the n_k-weighted mean (default), Flower's FedMedian, FedTrimmedAvg, Krum or multi-Krum", optional: true),
        .init(name: "robust.trim", kind: .double(0...0.4999), defaultValue: nil, help: "trimmed_mean: share cut from each end per coordinate (Flower's beta); unset: 0.2", optional: true),
        .init(name: "robust.byzantine_f", kind: .int(0...1_000_000), defaultValue: nil, help: "krum, multi_krum: the number f of Byzantine clients tolerated; unset: 1", optional: true),
        .init(name: "robust.krum_m", kind: .int(1...1_000_000), defaultValue: nil, help: "multi_krum: the clients kept and averaged; unset: 2", optional: true),
    ]
}

/// `[dp]`: client-level differential privacy (DP-FedAvg).
public struct DPSection: ConfigSection {
    public static let name = "dp"
    public var clip: Double?
    public var noiseMultiplier: Double?
    public var delta: Double?

    public static let keys: [ConfigKey] = [
        .init(name: "dp.clip", kind: .double(1e-12...1e12), defaultValue: nil,
              help: "client-level DP (DP-FedAvg): each client's update (the change of what it sends during the round) is clipped to this L2 norm before it leaves the client; unset: no DP", optional: true),
        .init(name: "dp.noise_multiplier", kind: .double(0...1e6), defaultValue: nil,
              help: "σ: the server adds N(0, (σ·dp.clip)²) to every coordinate of every clipped update, seeded by (seed, round, client); unset: 1", optional: true),
        .init(name: "dp.delta", kind: .double(1e-15...0.1), defaultValue: nil, help: "δ at which the RDP accountant reports ε after every round; unset: 1e-5", optional: true),
    ]
}

/// `[faults]`: fault injection for tests (not part of the run's identity).
public struct FaultsSection: ConfigSection {
    public static let name = "faults"
    public var nanClient: Int?
    public var nanRound: Int?
    public var scaleClient: Int?
    public var scaleFactor: Double?
    public var failClient: Int?
    public var failRound: Int?
    public var killPoint: String?
    public var killRound: Int?
    public var stallRound: Int?
    public var stallSeconds: Double?

    public static let keys: [ConfigKey] = [
        .init(name: "faults.nan_client", kind: .int(0...1_000_000), defaultValue: nil, help: "fault injection (tests): this client's trained parameters get a NaN (every round, or faults.nan_round)", optional: true),
        .init(name: "faults.nan_round", kind: .int(1...1000), defaultValue: nil, help: "fault injection: the round of faults.nan_client (unset: every round)", optional: true),
        .init(name: "faults.scale_client", kind: .int(0...1_000_000), defaultValue: nil, help: "fault injection: this client's trained parameters are multiplied by faults.scale_factor every round", optional: true),
        .init(name: "faults.scale_factor", kind: .double(-1e30...1e30), defaultValue: nil, help: "fault injection: the factor of faults.scale_client (unset: 1e6)", optional: true),
        .init(name: "faults.fail_client", kind: .int(0...1_000_000), defaultValue: nil, help: "fault injection: this client's training throws (in faults.fail_round, or every round)", optional: true),
        .init(name: "faults.fail_round", kind: .int(1...1000), defaultValue: nil, help: "fault injection: the round of faults.fail_client (unset: every round)", optional: true),
        .init(name: "faults.kill_point", kind: .string(["after_client_files", "after_round_file", "after_latest", "after_metrics"]), defaultValue: nil,
              help: "fault injection: every rank kills itself (SIGKILL) at this point of round faults.kill_round's commit", optional: true),
        .init(name: "faults.kill_round", kind: .int(1...1000), defaultValue: nil, help: "fault injection: the round of faults.kill_point (unset: 1)", optional: true),
        .init(name: "faults.stall_round", kind: .int(1...1000), defaultValue: nil,
              help: "fault injection: in this round the first client rank (rank 1) sleeps faults.stall_seconds before training and every other rank waits for it in the round's collectives: a round too slow for the stop grace (tests of the stop signals)", optional: true),
        .init(name: "faults.stall_seconds", kind: .double(0...1e6), defaultValue: nil, help: "fault injection: how long faults.stall_round stalls (unset: 60)", optional: true),
    ]
}

/// `[eval]`: evaluation.
public struct EvalSection: ConfigSection {
    public static let name = "eval"
    public var maxExamples: Int
    public var firstExample: Int
    public var maxNewTokens: Int
    public var fraction: Double?
    public var batchSize: Int
    public var when: EvalWhen?

    public static let keys: [ConfigKey] = [
        .init(name: "eval.max_examples", kind: .int(1...1_000_000), defaultValue: .int(200), help: "test examples each client scores (from its task's test split)"),
        .init(name: "eval.first_example", kind: .int(0...1_000_000), defaultValue: .int(0),
              help: "index of the first test example scored: 0 for the reported scores, e.g. 200 for a held-out slice that tunes learning rates"),
        .init(name: "eval.max_new_tokens", kind: .int(1...64), defaultValue: .int(16), help: "greedy decoding length cap"),
        .init(name: "eval.fraction", kind: .double(1e-9...1), defaultValue: nil,
              help: "share of the clients scored in an intermediate evaluation round, a seeded sample (at least one client); the last round scores every client. Unset: 1, every client", optional: true),
        .init(name: "eval.batch_size", kind: .int(1...512), defaultValue: .int(32), help: "evaluation batch size"),
        .init(name: "eval.when", kind: .string(EvalWhen.allCases.map(\.rawValue)), defaultValue: nil,
              help: "which model a client is scored on: \"after\" the round's aggregation (its personalised model; clients/eval_score), \"before\" it (the model it just trained; clients/eval_score_before, clients that did not train that round have none), or \"both\"; unset: after", optional: true),
    ]
}
