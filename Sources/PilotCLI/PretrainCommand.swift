import ArgumentParser
import Foundation
import PilotComm
import PilotCore
import PilotData
import PilotFederation
import PilotJob
import PilotPretrain
import PilotModel
import PilotTensor

/// `pilot pretrain`: the base model (ViT + MLP connector + LM) from the public pretraining split,
/// data-parallel over the MPI world. Maps flags onto `PretrainingParameters`; the work is in
/// `Pretrainer` and `BaseCheckpoint`.
struct PretrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pretrain",
        abstract: "Pretrain the base model on a scenario's public pretraining split and write the base checkpoint.",
        discussion: """
        Trains the vision encoder, the MLP connector and the whole LM (no LoRA) on DIR/pretrain.h5, \
        which no client owns. Under mpirun every rank computes gradients on a fixed share of each \
        global batch and the gradients are summed in rank order, so the same seed and number of ranks \
        give a bitwise-identical checkpoint. Runs without mpirun as one rank. Rank 0 writes BASE.h5 \
        (every parameter by name, the tokenizer under /tokenizer, the loss curve under \
        /pretraining/loss, the model config and training settings as root attributes) with an atomic \
        commit and a SHA-256 per dataset. Defaults take about 1 minute on the 'small' scenario \
        with `mpirun -np 2` on a quiet 2-core machine (docs/pretraining.md).
        With --lm DIR (a model directory from `pilot model import` or scripts/get_smollm2.sh) the LM \
        is that pretrained model, frozen, as LLaVA's stage 1 has it: only the vision encoder and the \
        connector train, the connector's output width is the LM's, the text is laid out in the LM's \
        own tokenizer and chat template (the image inside the user turn), and BASE.h5 refers to the \
        LM (path and SHA-256 of its files) instead of copying it. Example: \
        pilot pretrain --data data/vu --lm models/smollm2-135m-instruct --out data/vu/base-smollm2.h5 \
        --steps 100 --batch 16
        With --vision-tower DIR as well (a directory that transformers' CLIPVisionModel.save_pretrained \
        wrote), that CLIP tower is the vision encoder, frozen, instead of the built-in ViT: the patch \
        tokens of its hidden state --vision-feature-layer (-2, the penultimate layer, as LLaVA) go to \
        the connector, and only the connector trains. The images must be the tower's image_size \
        (`pilot data import --image-size N`). BASE.h5 refers to the tower (path and SHA-256) as it does \
        to the LM.
        """)

    @Option(help: "Scenario directory written by `pilot data generate`.")
    var data: String
    @Option(help: "Base checkpoint to write (HDF5).")
    var out: String
    @Option(help: "Optimizer steps.")
    var steps: Int = PretrainingParameters().steps
    @Option(help: "Global batch size (sequences per step, split over the ranks).")
    var batch: Int = PretrainingParameters().batchSize
    @Option(help: "Peak learning rate (linear warm-up, then cosine to 10% of it).")
    var lr: Float = PretrainingParameters().learningRate
    @Option(help: "Warm-up steps.")
    var warmup: Int = PretrainingParameters().warmupSteps
    @Option(help: "Seed of the initial weights and of the example order.")
    var seed: UInt64 = PretrainingParameters().seed
    @Option(name: .customLong("eval-every"), help: "Print a progress line every K steps.")
    var evalEvery: Int = PretrainingParameters().logEvery
    @Option(name: .customLong("eval-test"), help: "After training, score the base on up to N examples of each of the scenario's test splits (greedy decoding; 0 skips) and store the scores in the checkpoint.")
    var evalTest: Int = 0
    @Option(name: .customLong("model-size"), help: "Model preset: tiny (docs/design.md §2 reference) or micro (a very small model for tests). With --lm only its vision encoder and connector sizes are used.")
    var modelSize: String = "tiny"
    @Option(help: "An imported LM's directory: pretrain on it, frozen (LLaVA stage 1), instead of the built-in LM.")
    var lm: String?
    @Option(name: .customLong("vision-tower"), help: "A CLIP vision tower's directory (CLIPVisionModel.save_pretrained): the frozen vision encoder instead of the built-in ViT. Needs --lm.")
    var visionTower: String?
    @Option(name: .customLong("vision-feature-layer"), help: "With --vision-tower: which of its hidden states feeds the connector, Python-style (-2, the penultimate, is LLaVA's).")
    var visionFeatureLayer: Int = -2
    @Option(name: .customLong("base-dtype"), help: ArgumentHelp("With --lm: hold the frozen LM's matrices in f32, bf16 (half the bytes) or q8 (GGUF's Q8_0, about a quarter), as a run's model.base_dtype does. The base records it, and runs on the base use it unless their config says otherwise. A 7B LM needs 27 GB in f32, 13.5 GB in bf16.", valueName: "f32|bf16|q8"))
    var baseDtype = "f32"
    @Flag(name: .customLong("recompute-activations"), help: "Keep only each LM layer's input and recompute the layer in the backward pass, as a run's train.recompute_activations: the same bits, less memory (a 7B LM's activations are about 200 KB per token per layer), more time.")
    var recomputeActivations = false
    @Option(name: .customLong("text-length"), help: "Text tokens per sequence with --lm (template, instruction and answer; longer conversations are cut and counted). Default 96.")
    var textLength: Int?

    @Option(name: .customLong("blas-core"), help: ArgumentHelp("Pin OpenBLAS's kernel, as run.blas_core does for pilot train (haswell: the same bits on every x86-64 CPU with AVX2). The base records the kernel it was made with, and a run on another is warned about.", valueName: BLASPin.choices.joined(separator: "|")))
    var blasCore: String?

    @OptionGroup var engine: ThreadOptions

    func validate() throws {
        if let blasCore, !BLASPin.choices.contains(blasCore) {
            throw ValidationError("--blas-core \(blasCore): choose one of \(BLASPin.choices.joined(separator: ", "))")
        }
        guard steps >= 1 else { throw ValidationError("--steps must be at least 1") }
        guard batch >= 1 else { throw ValidationError("--batch must be at least 1") }
        guard lr > 0 else { throw ValidationError("--lr must be positive") }
        guard warmup >= 0 else { throw ValidationError("--warmup must be ≥ 0") }
        guard evalEvery >= 1 else { throw ValidationError("--eval-every must be at least 1") }
        guard evalTest >= 0 else { throw ValidationError("--eval-test must be ≥ 0") }
        guard ModelPreset(rawValue: modelSize) != nil else { throw ValidationError("--model-size must be tiny or micro, not '\(modelSize)'") }
        if textLength != nil && lm == nil { throw ValidationError("--text-length applies to a pretrained LM (--lm DIR); the built-in LM's text length is its preset's") }
        if visionTower != nil && lm == nil { throw ValidationError("--vision-tower needs --lm DIR: a CLIP tower is the vision encoder of a model over a pretrained LM") }
        if visionTower == nil && visionFeatureLayer != -2 { throw ValidationError("--vision-feature-layer applies to a CLIP tower (--vision-tower DIR)") }
        guard BaseDType(rawValue: baseDtype) != nil else { throw ValidationError("--base-dtype must be f32, bf16 or q8, not '\(baseDtype)'") }
        if baseDtype != "f32" && lm == nil { throw ValidationError("--base-dtype applies to a pretrained LM (--lm DIR); the built-in LM trains in f32") }
        if let textLength, textLength < 8 || textLength > 4096 { throw ValidationError("--text-length must be in 8...4096, not \(textLength)") }
    }

    /// The model config and text codec: the preset over the built-in LM, or the preset's vision part
    /// and connector over the imported LM, with the LM's chat layout.
    func model(for dir: ScenarioDirectory, base: PretrainedBase?) throws -> (ModelConfig, any ExampleCodec) {
        let preset = ModelPreset(rawValue: modelSize)!.config
        guard let base else { return (preset, WordLevelCodec(try dir.tokenizer())) }
        let codec = try ChatCodec(base: base)
        var c = base.modelConfig(preset)
        let text = textLength ?? 96
        guard text >= codec.minimumTextLength else {
            throw PilotError.invalidArgument("--text-length \(text) is too short for \(codec.summary): it needs at least \(codec.minimumTextLength) tokens; use \(codec.minimumTextLength + 48) or more")
        }
        c.visualPosition = codec.visualPosition
        c.contextLength = c.visualTokens + text
        try c.validate()
        return (c, codec)
    }

    func run() throws {
        if let blasCore { try BLASPin.apply(blasCore, what: "--blas-core \(blasCore)", remove: "drop --blas-core") }
        let threads = engine.configure()
        let world = try MPIRuntime.world()
        let dir = try ScenarioDirectory(path: data)
        let split = try dir.pretrain()
        var p = PretrainingParameters()
        p.steps = steps; p.batchSize = batch; p.learningRate = lr; p.warmupSteps = warmup; p.seed = seed; p.logEvery = evalEvery
        let lmDirectory = lm, towerDirectory = visionTower, featureLayer = visionFeatureLayer, dtype = BaseDType(rawValue: baseDtype)!
        let base = try RankCheck.run(towerDirectory == nil ? "loading the LM" : "loading the LM and the vision tower", on: world) {
            try lmDirectory.map { try PretrainedBase(directory: $0, visionTower: towerDirectory, featureLayer: featureLayer, dtype: dtype) }
        }
        let (config, codec) = try model(for: dir, base: base)
        let trainer = try Pretrainer(parameters: p, config: config, examples: split.examples, codec: codec, base: base, communicator: world,
                                      recomputeActivations: recomputeActivations)
        let root = world.isRoot
        if root, let base {
            Console.out("pretrain: on the LM at \(base.directory) (frozen, \(base.weights.dtype.rawValue), sha256 \(base.sha256.prefix(12))…), \(codec.summary), \(config.textLength) text tokens")
            if let t = base.visionTower {
                Console.out("pretrain: vision encoder = the CLIP tower at \(t.directory) (frozen, sha256 \(t.sha256.prefix(12))…, \(t.config.numHiddenLayers) layers, width \(t.config.hiddenSize)), \(config.visualTokens) patch tokens of \(t.config.imageSize)px images from hidden_states[\(t.featureLayer)]; only the connector trains")
            }
            if let line = trainer.data.truncation.message(textLength: config.textLength, what: "pretraining split") { Console.out(line) }
        }
        // mpirun gives ranks a pseudo-terminal, so only a plain (non-MPI) run on a terminal redraws one line.
        let tty = Console.isTerminal(1) && !MPIRuntime.launchedByMPI
        if root {
            Console.out("pretrain: \(split.examples.count) examples from \(dir.pretrainPath), \(world.size) rank(s), "
                + "\(trainer.model.parameters.trainableCount) trainable parameters, batch \(batch) (\(Pretrainer.slice(rank: 0, size: world.size, batch: batch).count) on rank 0), "
                + "\(steps) steps, lr \(lr), warm-up \(warmup), seed \(seed), \(threads)")
        }
        try trainer.run { s in
            guard root else { return }
            let line = String(format: "step %5d/%d  loss %.4f  lr %.2e  %.0f tok/s  %.1f s", s.step, s.steps, s.loss,
                              Double(s.learningRate), s.tokensPerSecond, s.elapsed)
            if tty && s.step < s.steps { Console.write(fd: 1, "\r" + line) } else { Console.out((tty ? "\r" : "") + line) }
        }
        var scores: [String: Double] = [:]
        if evalTest > 0 && root {
            for task in dir.tasks {
                let examples = Array(try dir.test(task).examples.prefix(evalTest))
                let t0 = DispatchTime.now().uptimeNanoseconds
                let r = try evaluate(model: trainer.model, examples: examples, codec: codec, task: task)
                scores[task.rawValue] = r.score
                Console.out(String(format: "base on test/%@ (%d examples): %@ %.4f  (%.1f s)", task.rawValue, examples.count,
                                   r.kind.rawValue, r.score, Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9))
            }
        }
        if root {
            let manifest = Self.manifest(dir.path)
            let meta = BaseCheckpointMetadata(scenario: dir.scenario.rawValue, dataSeed: manifest.seed, examples: split.examples.count,
                                              training: p, worldSize: world.size, finalLoss: trainer.finalLoss, testScores: scores)
            try BaseCheckpoint.write(model: trainer.model, tokenizer: (codec as? WordLevelCodec)?.tokenizer, metadata: meta,
                                     lossCurve: trainer.losses, to: out)
            Console.out(String(format: "wrote %@ (final loss %.4f)", out, trainer.finalLoss))
        }
        try world.barrier()
    }

    /// The data seed from DIR/scenario.json (0 when absent).
    static func manifest(_ dir: String) -> (seed: Int64, size: String) {
        guard let d = FileManager.default.contents(atPath: dir + "/scenario.json"),
              let obj = try? JSONSerialization.jsonObject(with: d) as? [String: Any] else { return (0, "") }
        return ((obj["seed"] as? NSNumber)?.int64Value ?? 0, obj["size"] as? String ?? "")
    }
}
