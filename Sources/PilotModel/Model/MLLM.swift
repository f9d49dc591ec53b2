import PilotCore
import PilotTensor

private typealias Names = ConnectorNames

// Shape letters: B sequences, P visual tokens, T context, N = B·T, C LM width, Dv vision width.

/// The loss of one step and its parts (auxiliary parts already multiplied by their λ, as in the JAX reference).
public struct LossParts: Sendable, Equatable, CustomStringConvertible {
    public var total: Double
    /// Mean next-token cross-entropy over the target tokens.
    public var ce: Double
    /// λ0·Ld (Pilot stage 1).
    public var diff: Double
    /// λ1·Lb (stage 2).
    public var balance: Double
    /// λ2·Lz (stage 2).
    public var z: Double
    /// The method's weight penalty (`MLLM.penalty`, e.g. FedProx's (μ/2)·‖w − w_global‖²; 0 without one).
    public var penalty: Double = 0
    /// Number of target tokens.
    public var targets: Int
    public var description: String {
        "loss \(total) (ce \(ce), diff \(diff), balance \(balance), z \(z), penalty \(penalty), \(targets) targets)"
    }
}

/// The small LLaVA-style MLLM of docs/design.md §2: ViT → connector (variant) → Llama-style LM with LoRA.
/// Hand-written forward and backward passes over flat buffers; every parameter is a named view into
/// `parameters` (trainable ones in one contiguous buffer).
public final class MLLM {
    public let config: ModelConfig
    public let variant: ConnectorVariant
    public let options: ConnectorOptions
    public let parameters: ParameterStore
    public let optimizer: AdamW
    public let maxBatch: Int
    /// Weight of the dual-LoRA variant's local LoRA (1 in training; FedDPA-T sets it per test instance).
    public var localLoRAWeight: Float
    /// A federated method's term on the trainable weights (FedProx's proximal term), added to the loss
    /// and the gradient of every training step when set.
    public var penalty: (any WeightPenalty)?

    /// The imported frozen LM this model runs on, if any (shared, never written).
    public let base: PretrainedBase?
    /// The built-in ViT; nil when a CLIP tower (`base.visionTower`) is the vision encoder.
    let vision: VisionEncoder?
    /// The frozen CLIP vision tower, when the model has one (no parameters, forward only).
    let tower: FrozenVisionTower?
    let connector: Connector
    let lm: LanguageModel
    let hasLoRA: Bool
    let trainsVision: Bool
    /// [B·P, Dv] vision features of the current batch when they are given precomputed.
    let hvInput: Tensor
    let dvis: Tensor

    /// - Parameters:
    ///   - trainable: which parameter groups train (the variant's rule by default).
    ///   - maxBatch: activations are allocated once for this many sequences.
    ///   - seed: initial weights (each parameter from its own stream keyed by its name).
    ///   - base: the imported pretrained LM when `config.lm` is set (load it once per rank and share it).
    ///   - recomputeActivations: the LM keeps only each layer's input and recomputes the layer in the
    ///     backward pass (`train.recompute_activations`): less memory, the same bits, more time.
    public init(config: ModelConfig = .tiny, variant: ConnectorVariant, options: ConnectorOptions = .init(),
                trainable: TrainableSelection = .variantDefault, maxBatch: Int, seed: UInt64 = 0,
                optimizer: AdamW.Parameters = .init(), base: PretrainedBase? = nil, recomputeActivations: Bool = false) throws {
        try config.validate()
        if config.lm != nil {
            guard let base else {
                throw PilotError.invalidArgument("this model runs on the pretrained LM at \(config.lm!.path); load it (PretrainedBase) and pass it as base")
            }
            try base.check(config, context: "model config")
        } else if base != nil {
            throw PilotError.invalidArgument("a pretrained base was given but the model config has no lm reference (use base.modelConfig(_:))")
        }
        self.base = base
        try options.validate()
        guard maxBatch >= 1 else { throw PilotError.invalidArgument("maxBatch must be ≥ 1") }
        self.config = config; self.variant = variant; self.options = options; self.maxBatch = maxBatch
        localLoRAWeight = options.localLoRAWeight
        hasLoRA = trainable != .pretrain
        let branches = hasLoRA ? (variant == .dualLoRA ? ["", "local_"] : [""]) : []
        let specs = (config.visionTower == nil ? VisionEncoder.parameterSpecs(config) : [])
            + Connector.parameterSpecs(variant, options, config)
            + LanguageModel.parameterSpecs(config, loraBranches: branches)
        let groups = Set(specs.map(\.group))
        let isTrainable: (String) -> Bool
        switch trainable {
        case .variantDefault:
            switch variant {
            case .mlp, .dualLoRA, .pilotStage1:
                isTrainable = { $0.hasPrefix(Names.root) || $0.hasPrefix("lora") }
            case .pilotStage2:
                let local = Names.taskAdapters(options.localTask)
                let client = options.clientAdapterInStage2 == .trainable
                isTrainable = { g in
                    g == local || g == Names.crossTaskAdapters || g == Names.router || g.hasPrefix("lora")
                        || (client && g == Names.clientAdapter)
                }
            }
        case .pretrain: isTrainable = { $0 == "vision" || $0 == "lm" || $0.hasPrefix(Names.root) }
        case .connectorAndLoRA: isTrainable = { $0.hasPrefix(Names.root) || $0.hasPrefix("lora") }
        case let .groups(set):
            if let bad = set.first(where: { !groups.contains($0) }) {
                throw PilotError.invalidArgument("unknown parameter group '\(bad)'; this model has: \(groups.sorted().joined(separator: ", "))")
            }
            isTrainable = { set.contains($0) }
        }
        parameters = ParameterStore(specs: specs, trainableGroups: isTrainable, seed: seed)
        self.optimizer = AdamW(count: parameters.trainableCount, parameters: optimizer)
        tower = base?.visionTower
        vision = tower == nil ? VisionEncoder(cfg: config, store: parameters, maxBatch: maxBatch) : nil
        connector = Connector(variant: variant, options: options, cfg: config, store: parameters, maxBatch: maxBatch)
        lm = LanguageModel(cfg: config, store: parameters, maxBatch: maxBatch, loraBranches: branches, base: base?.weights,
                           recomputeActivations: recomputeActivations)
        trainsVision = vision?.trains ?? false
        hvInput = Tensor(shape: [maxBatch * config.visualTokens, config.visionWidth])
        dvis = Tensor(shape: [maxBatch * config.visualTokens, config.width])
        if variant == .pilotStage2 { try initializeCrossTaskAdapters() }
    }

    /// Bytes of the LM's activations kept from the forward to the backward pass (`LanguageModel.storedActivationBytes`).
    public var storedActivationBytes: Int { lm.storedActivationBytes }

    // MARK: Named parameters

    /// A parameter's values as a view into the model (writes change the model).
    public func tensor(named name: String) throws -> Tensor { try parameters.tensor(named: name) }
    /// The contiguous trainable slice of a group (e.g. "lora", "connector/task_adapters/0").
    public func trainableView(group: String) throws -> Tensor { try parameters.view(group: group) }

    /// Stage 2: sets every cross-task adapter from the local task adapter (default) or leaves the random
    /// init (`crossTaskInit = .random`). Call after loading the aggregated task adapters.
    public func initializeCrossTaskAdapters() throws {
        guard variant == .pilotStage2, options.crossTaskInit == .copyOfLocal else { return }
        for t in 0..<options.numTasks where t != options.localTask {
            try parameters.copy(from: Names.prefix(Names.taskAdapters(options.localTask)), to: Names.prefix(Names.crossTaskAdapter(t)))
        }
    }

    // MARK: Forward and backward

    /// Hv [B·P, Dv]: the given features, or the vision encoder (the built-in ViT or the CLIP tower) on pixels.
    func visualFeatures(_ batch: Batch) throws -> UnsafePointer<Float> {
        switch batch.visual {
        case let .features(f):
            f.withUnsafeBufferPointer { hvInput.pointer.update(from: $0.baseAddress!, count: f.count) }
            return UnsafePointer(hvInput.pointer)
        case let .pixels(p):
            if let tower {
                let f = try tower.features(modelPixels: p, batch: batch.size)
                f.withUnsafeBufferPointer { hvInput.pointer.update(from: $0.baseAddress!, count: f.count) }
                return UnsafePointer(hvInput.pointer)
            }
            let vision = vision!
            p.withUnsafeBufferPointer { vision.forward(pixels: $0.baseAddress!, batch: batch.size) }
            return UnsafePointer(vision.hv.pointer)
        }
    }

    /// Vision (if pixels), connector and every LM block for a validated batch; returns the connector's aux losses.
    /// `keepKeysValues`: the LM keeps the keys and values for decoding (`LanguageModel.forwardCache`).
    func prefill(_ batch: Batch, keepKeysValues: Bool = false) throws -> Connector.Aux {
        let B = batch.size, P = config.visualTokens, T = config.contextLength, C = config.width, L = T - P
        lm.prepare(localMix: localLoRAWeight)
        let hv = try visualFeatures(batch)
        let aux = connector.forward(hv: hv, batch: B)
        // x0 = [first o token embeddings | visual tokens | the other token embeddings], o = visualOffset (0 for the built-in LM)
        let x0 = lm.resid[0].pointer, vis = connector.out.pointer, o = config.visualOffset
        batch.tokens.withUnsafeBufferPointer { tok in
            for b in 0..<B {
                let t = tok.baseAddress! + b * L, row = x0 + b * T * C
                if o > 0 { lm.embed(out: row, tokens: t, count: o) }
                (row + o * C).update(from: vis + b * P * C, count: P * C)
                lm.embed(out: row + (o + P) * C, tokens: t + o, count: L - o)
            }
        }
        if let lengths = batch.lengths {
            lengths.withUnsafeBufferPointer { lm.forward(batch: B, lengths: $0.baseAddress, keepKeysValues: keepKeysValues) }
        } else {
            lm.forward(batch: B, lengths: nil, keepKeysValues: keepKeysValues)
        }
        return aux
    }

    /// Forward pass (and, with `backward`, the backward pass adding into `parameters.gradients`).
    func run(_ batch: Batch, backward: Bool) throws -> LossParts {
        try batch.validate(config, maxBatch: maxBatch)
        let B = batch.size, P = config.visualTokens, T = config.contextLength, C = config.width, L = T - P
        let aux = try prefill(batch)
        let head = batch.targets.withUnsafeBufferPointer { lm.headLoss(batch: B, targets: $0.baseAddress!, backward: backward) }
        if backward {
            if let lengths = batch.lengths {
                lengths.withUnsafeBufferPointer { lm.backward(batch: B, lengths: $0.baseAddress) }
            } else {
                lm.backward(batch: B, lengths: nil)
            }
            let dx0 = lm.dres.pointer, o = config.visualOffset
            if let dEmbed = lm.dEmbed {
                batch.tokens.withUnsafeBufferPointer { tok in
                    for b in 0..<B {
                        let t = tok.baseAddress! + b * L, row = dx0 + b * T * C
                        if o > 0 { Embedding.backward(dtable: dEmbed, dout: row, tokens: t, count: o, width: C) }
                        Embedding.backward(dtable: dEmbed, dout: row + (o + P) * C, tokens: t + o, count: L - o, width: C)
                    }
                }
            }
            let dv = dvis.pointer
            for b in 0..<B { (dv + b * P * C).update(from: dx0 + (b * T + o) * C, count: P * C) }
            let trainedVision = trainsVision ? vision : nil
            if let v = trainedVision { v.dhv.pointer.update(repeating: 0, count: B * P * config.visionWidth) }
            if connector.trains || trainedVision != nil {
                connector.backward(dout: dv, batch: B, dhv: trainedVision?.dhv.pointer)
            }
            trainedVision?.backward(batch: B)
        }
        let total = head.ce + aux.diff + aux.balance + aux.z
        return LossParts(total: total, ce: head.ce, diff: aux.diff, balance: aux.balance, z: aux.z, targets: head.count)
    }

    /// The loss of `batch` (forward only), with the weight penalty when one is set.
    public func loss(_ batch: Batch) throws -> LossParts {
        var parts = try run(batch, backward: false)
        if let penalty {
            parts.penalty = penalty.forward(weights: parameters.trainable)
            parts.total += parts.penalty
        }
        return parts
    }

    /// Zeroes the gradients, then runs forward and backward; the gradients are in `parameters.gradients`.
    /// With a `penalty`, its value is in the loss and its gradient in the gradients.
    @discardableResult
    public func forwardBackward(_ batch: Batch) throws -> LossParts {
        parameters.zeroGradients()
        var parts = try run(batch, backward: true)
        if let penalty {
            parts.penalty = penalty.forward(weights: parameters.trainable)
            parts.total += parts.penalty
            penalty.backward(weights: parameters.trainable, grads: parameters.gradients)
        }
        return parts
    }

    /// One training step: forward, backward and an AdamW update of the trainable buffer. The returned
    /// loss is the one before the update. Frozen parameters are never written.
    @discardableResult
    public func trainStep(_ batch: Batch, learningRate: Float) throws -> LossParts {
        let l = try forwardBackward(batch)
        optimizer.step(params: parameters.trainable, grads: parameters.gradients, lr: learningRate)
        return l
    }
}
