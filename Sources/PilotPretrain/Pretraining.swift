import Foundation
import PilotComm
import PilotCore
import PilotData
import PilotFederation
import PilotModel


/// Model sizes by name, for the CLI and tests.
public enum ModelPreset: String, CaseIterable, Sendable {
    /// docs/design.md §2's reference model (`ModelConfig.tiny`).
    case tiny
    /// A very small model with the same sequence layout (32×32 images, 16 visual tokens, 48 text
    /// tokens, vocab 512): for tests and smoke runs that must finish in seconds.
    case micro

    public var config: ModelConfig {
        switch self {
        case .tiny: return .tiny
        case .micro:
            var c = ModelConfig.tiny
            c.visionWidth = 32; c.visionLayers = 1; c.visionHeads = 2; c.visionMLPHidden = 64
            c.width = 64; c.layers = 1; c.heads = 2; c.ffnHidden = 128; c.adapterHidden = 64
            c.loraRank = 4; c.loraAlpha = 8
            return c
        }
    }
}

/// Progress of pretraining, reported every `logEvery` steps and after the last one (on every rank;
/// the caller decides who prints).
public struct PretrainingProgress: Sendable {
    /// Steps done (1-based).
    public var step: Int
    public var steps: Int
    /// Mean loss (CE over answer tokens, over the whole global batch) of the steps since the last report.
    public var loss: Double
    public var learningRate: Float
    /// Token positions (B·T) processed per second by the whole job since the last report.
    public var tokensPerSecond: Double
    /// Seconds since `run` started.
    public var elapsed: Double
}

/// Central, data-parallel pretraining of the base model (docs/design.md §2): vision encoder, MLP connector
/// and LM, on the public pretraining split.
///
/// Every rank holds the whole (public) split and the same model. Step s takes global batch s from
/// a seeded order of epochs (the same on every rank); rank r computes gradients on its contiguous
/// slice r·B/P ..< (r+1)·B/P, scaled by its share of the batch's answer tokens, so that the sum over
/// ranks is the gradient of the mean CE over the whole batch. The sum is the communicator's
/// rank-ordered allreduce, so every rank then applies the same AdamW step and, for a given seed and
/// world size, the weights are bitwise reproducible.
public final class Pretrainer {
    public let parameters: PretrainingParameters
    public let model: MLLM
    public let data: PreparedExamples
    public let communicator: any Communicator
    /// Mean loss of every step so far (the same on every rank).
    public private(set) var losses: [Double] = []

    private var order: [Int] = []
    private var epoch = -1

    /// - Parameters:
    ///   - config: the model's sizes (vocab must cover the tokenizer); with `config.lm` set, the LM is
    ///     `base`, frozen, and only the vision encoder and the connector train (LLaVA's stage 1).
    ///   - codec: how examples become text (the word-level layout, or the LM's chat layout).
    ///   - recomputeActivations: the LM keeps only each layer's input and recomputes the layer in the
    ///     backward pass (as `train.recompute_activations`): the same bits, less memory, more time.
    public init(parameters: PretrainingParameters, config: ModelConfig = .tiny, examples: [Example], codec: any ExampleCodec,
                base: PretrainedBase? = nil, communicator: any Communicator, recomputeActivations: Bool = false) throws {
        try parameters.validate()
        guard !examples.isEmpty else { throw PilotError.invalidArgument("pretraining: the pretraining split has no examples") }
        self.parameters = parameters
        self.communicator = communicator
        data = try Batcher(config: config, codec: codec, truncate: config.lm != nil).prepare(examples)
        // The largest share of a global batch (shares differ by at most one sequence).
        let perRank = (parameters.batchSize + communicator.size - 1) / communicator.size
        model = try MLLM(config: config, variant: .mlp, trainable: .pretrain, maxBatch: perRank, seed: parameters.seed,
                         optimizer: AdamW.Parameters(weightDecay: parameters.weightDecay,
                                                     maxGradNorm: parameters.maxGradNorm > 0 ? parameters.maxGradNorm : nil),
                         base: base, recomputeActivations: recomputeActivations)
    }

    /// The built-in LM over a word-level tokenizer.
    public convenience init(parameters: PretrainingParameters, config: ModelConfig = .tiny, examples: [Example], tokenizer: Tokenizer,
                            communicator: any Communicator) throws {
        try self.init(parameters: parameters, config: config, examples: examples, codec: WordLevelCodec(tokenizer),
                      communicator: communicator)
    }

    /// Rank r's contiguous share of a global batch of `batch` sequences (sizes differ by at most one).
    public static func slice(rank r: Int, size p: Int, batch b: Int) -> Range<Int> {
        (r * b / p)..<((r + 1) * b / p)
    }

    /// Indices into the split of global batch `step`: consecutive positions of a stream of epochs, each
    /// a shuffle seeded by (seed, epoch), so every rank sees the same order.
    public func globalBatch(step: Int) -> [Int] {
        let n = data.count, B = parameters.batchSize
        var out: [Int] = []
        out.reserveCapacity(B)
        for k in (step * B)..<((step + 1) * B) {
            let e = k / n
            if e != epoch {
                var rng = PilotRNG.stream(seed: parameters.seed, "pretrain-order-epoch-\(e)")
                order = rng.shuffled(Array(0..<n))
                epoch = e
            }
            out.append(order[k % n])
        }
        return out
    }

    /// Forward and backward on this rank's slice of global batch `step`, then the rank-ordered sum
    /// over ranks: afterwards `model.parameters.gradients` holds the gradient of the batch's mean CE on
    /// every rank. Returns that mean CE.
    @discardableResult
    public func computeGradients(step: Int) throws -> Double {
        let batch = globalBatch(step: step)
        let mine = Array(batch[Pretrainer.slice(rank: communicator.rank, size: communicator.size, batch: batch.count)])
        let total = batch.reduce(0) { $0 + data.targetCounts[$1] }
        let local = mine.reduce(0) { $0 + data.targetCounts[$1] }
        let grads = model.parameters.gradients
        var weightedLoss = 0.0
        if mine.isEmpty || local == 0 {
            grads.zero()
        } else {
            let l = try model.forwardBackward(data.batch(mine))
            // The model's CE is the mean over this slice's targets; its share of the batch mean is local/total.
            let w = Float(local) / Float(total)
            if w != 1 { let g = grads.pointer; for i in 0..<grads.count { g[i] *= w } }
            weightedLoss = l.ce * Double(local) / Double(total)
        }
        if communicator.size > 1 {
            try communicator.allreduce(grads.buffer, op: .sum)
            weightedLoss = try communicator.allreduce(scalar: weightedLoss, op: .sum)
        }
        return weightedLoss
    }

    /// One optimizer step (0-based `step`); returns the batch's mean loss before the update.
    @discardableResult
    public func step(_ step: Int) throws -> Double {
        let loss = try computeGradients(step: step)
        model.optimizer.step(params: model.parameters.trainable, grads: model.parameters.gradients,
                             lr: parameters.schedule.rate(at: step))
        losses.append(loss)
        return loss
    }

    /// Runs all steps, calling `progress` every `logEvery` steps and after the last one.
    public func run(progress: (PretrainingProgress) -> Void = { _ in }) throws {
        let start = DispatchTime.now().uptimeNanoseconds
        var windowStart = start, windowSteps = 0, windowLoss = 0.0
        let tokensPerStep = Double(parameters.batchSize * model.config.contextLength)
        for s in losses.count..<parameters.steps {
            windowLoss += try step(s)
            windowSteps += 1
            if (s + 1) % parameters.logEvery == 0 || s + 1 == parameters.steps {
                let now = DispatchTime.now().uptimeNanoseconds
                let window = Double(now - windowStart) / 1e9
                progress(PretrainingProgress(step: s + 1, steps: parameters.steps, loss: windowLoss / Double(windowSteps),
                                             learningRate: parameters.schedule.rate(at: s),
                                             tokensPerSecond: tokensPerStep * Double(windowSteps) / max(window, 1e-9),
                                             elapsed: Double(now - start) / 1e9))
                windowStart = now; windowSteps = 0; windowLoss = 0
            }
        }
    }

    /// Mean loss of the last `logEvery` steps (the "final loss" of the checkpoint).
    public var finalLoss: Double {
        let tail = losses.suffix(parameters.logEvery)
        return tail.isEmpty ? .nan : tail.reduce(0, +) / Double(tail.count)
    }
}
