import PilotCore

/// The config checked against the tensors a checkpoint holds, before any weight is allocated
/// (docs/models.md, "What is checked"). By the time this runs, `LlamaConfig.validate` has capped every
/// size, and the format reader (`SafetensorsFile`, `GGUFFile`) has checked every tensor's byte range
/// against the file and refused every dtype it does not read. What is left is whether the two belong
/// together: every tensor the config implies is present with its shape, nothing else is, and so the
/// parameter count the config implies is the one the file holds. Since every tensor's bytes lie inside
/// its file, the weights allocated afterwards are bounded by the file's size.
extension LlamaWeights {
    /// Tensors a checkpoint may hold beyond `table`, which the loader ignores: the RoPE inverse frequencies
    /// (`model.layers.N.self_attn.rotary_emb.inv_freq`, [head_dim / 2]) that transformers before 4.31 saved as
    /// a buffer. pilot computes them from rope_theta and head_dim; the import leaves them out.
    public static func isIgnoredExtra(_ name: String) -> Bool { name.hasSuffix(".self_attn.rotary_emb.inv_freq") }

    /// Throws a `PilotError` naming `source`'s file and the tensor, with the expected and the found shape,
    /// when `source` does not hold exactly the tensors of `table(config)`: one missing, of another shape, a
    /// name twice, or a tensor the config does not describe (a layer past `num_hidden_layers`, an `lm_head`
    /// in a tied model, a bias the architecture lacks). Returns the parameter count (the tied head counted
    /// once), which equals the elements of the tensors present. Allocates nothing that scales with a size.
    @discardableResult
    public static func check(_ config: LlamaConfig, against source: TensorSource) throws -> Int {
        let path = source.path
        try config.validate(file: "the config of \(path)")  // done at decode already; the caps bound `table` below
        let entries = table(config)
        var stored: [String: TensorInfo] = [:]
        for t in source.tensorInfos {
            guard stored.updateValue(t, forKey: t.name) == nil else {
                throw PilotError.invalidArgument("\(path): tensor '\(t.name)' appears twice; the checkpoint is corrupt")
            }
        }
        // In the table's order, so the first complaint is about the first size that disagrees.
        var present = 0, expected = Set<String>()
        for (i, e) in entries.enumerated() {
            expected.insert(e.name)
            guard let t = stored[e.name] else {
                let hint = e.field == .lmHead ? " (config.json says tie_word_embeddings false; set it true if the head is the embedding)" : ""
                let missing = entries[i...].filter { stored[$0.name] == nil }.count
                let more = missing > 1 ? "; \(missing - 1) more tensors of the config are missing too" : ""
                throw PilotError.invalidArgument("\(source.location(of: e.name)): tensor '\(e.name)' is missing; expected shape \(e.shape) = \(shapeKeys(e.field)) from config.json (\(sizeSummary(config)))\(hint)\(more)")
            }
            guard t.shape == e.shape else {
                throw PilotError.invalidArgument("\(source.location(of: t.name)): tensor '\(t.name)' has shape \(t.shape); expected \(e.shape) = \(shapeKeys(e.field)) from config.json (\(sizeSummary(config))); the config and the weights do not belong together")
            }
            present += t.count
        }
        for t in source.tensorInfos where !expected.contains(t.name) {
            if isIgnoredExtra(t.name) {
                guard t.shape == [config.headDim / 2] else {
                    throw PilotError.invalidArgument("\(source.location(of: t.name)): tensor '\(t.name)' has shape \(t.shape); RoPE inverse frequencies of head_dim \(config.headDim) have shape [\(config.headDim / 2)]")
                }
            } else if t.name == "lm_head.weight" && config.tieWordEmbeddings {
                throw PilotError.invalidArgument("\(source.location(of: t.name)): tensor 'lm_head.weight' is present but config.json says tie_word_embeddings true; set tie_word_embeddings false in config.json if the model has its own output head")
            } else {
                throw PilotError.invalidArgument("\(source.location(of: t.name)): tensor '\(t.name)' \(t.shape) is not part of the model config.json describes (\(sizeSummary(config))); the config and the weights do not belong together, or the checkpoint is of an architecture pilot does not run")
            }
        }
        let total = entries.reduce(0) { $0 + $1.count }
        guard total == present else {  // every entry was found once with its shape, so this holds; kept as the stated invariant
            throw PilotError.invalidArgument("\(path): the tensors hold \(present) parameters but config.json implies \(total)")
        }
        return total
    }

    /// The config keys that give `field`'s shape, for error messages.
    static func shapeKeys(_ field: Field) -> String {
        switch field {
        case .embedTokens, .lmHead: "[vocab_size, hidden_size]"
        case .finalNorm, .inputLayernorm, .postAttentionLayernorm, .oBias: "[hidden_size]"
        case .qProj: "[num_attention_heads·head_dim, hidden_size]"
        case .kProj, .vProj: "[num_key_value_heads·head_dim, hidden_size]"
        case .oProj: "[hidden_size, num_attention_heads·head_dim]"
        case .qBias: "[num_attention_heads·head_dim]"
        case .kBias, .vBias: "[num_key_value_heads·head_dim]"
        case .gateProj, .upProj: "[intermediate_size, hidden_size]"
        case .downProj: "[hidden_size, intermediate_size]"
        }
    }

    static func sizeSummary(_ c: LlamaConfig) -> String {
        "num_hidden_layers \(c.numHiddenLayers), hidden_size \(c.hiddenSize), intermediate_size \(c.intermediateSize), num_attention_heads \(c.numAttentionHeads), num_key_value_heads \(c.numKeyValueHeads), head_dim \(c.headDim), vocab_size \(c.vocabSize), tie_word_embeddings \(c.tieWordEmbeddings)"
    }
}
