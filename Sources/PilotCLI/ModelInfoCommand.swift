import ArgumentParser
import Foundation
import PilotCore
import PilotLM

struct ModelInfoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "info",
        abstract: "Print a model's architecture, parameter counts, source dtypes, tokenizer and chat format.",
        discussion: "Example: pilot model info --model models/smollm2-135m-instruct"
    )

    @Option(help: "Model directory (see `pilot model import`).")
    var model: String

    func run() throws {
        let lm = try PretrainedLM(directory: model)
        let c = lm.config
        let embed = c.vocabSize * c.hiddenSize
        print("model:        \(model)")
        if let m = lm.manifest {
            print("imported:     from \(m.source) (\(m.sourceFormat); \(m.sourceDTypes.sorted { $0.key < $1.key }.map { "\($0.key) ×\($0.value)" }.joined(separator: ", "))) by \(m.importedBy)")
        } else {
            print("imported:     no pilot-model.json (a plain Hugging Face directory)")
        }
        print("stored:       \(lm.storedDTypes.sorted { $0.key < $1.key }.map { "\($0.key) ×\($0.value)" }.joined(separator: ", "))")
        print("architecture: \(c.modelType): \(c.numHiddenLayers) layers, hidden \(c.hiddenSize), FFN \(c.intermediateSize), \(c.numAttentionHeads) query heads, \(c.numKeyValueHeads) KV heads (\(c.numKeyValueGroups) per group), head_dim \(c.headDim)")
        print("              rope_theta \(c.ropeTheta), rms_norm_eps \(c.rmsNormEps), context \(c.maxPositionEmbeddings), q/k/v bias \(c.hasQKVBias ? "yes" : "no"), tied embeddings \(c.tieWordEmbeddings ? "yes" : "no")")
        print("parameters:   \(lm.parameterCount) (embeddings \(embed)\(c.tieWordEmbeddings ? ", shared with lm_head" : ""); blocks \(lm.parameterCount - embed * (c.tieWordEmbeddings ? 1 : 2)))")
        let t = lm.tokenizer
        func name(_ id: Int32?) -> String { id.map { "\(t.piece($0)) (\($0))" } ?? "none" }
        print("tokenizer:    byte-level BPE, \(t.vocabularySize) tokens; bos \(name(t.bosID)), eos \(name(t.eosID)), pad \(name(t.padID)), unk \(name(t.unkID)); adds BOS: \(t.addsBOS ? "yes" : "no")")
        print("chat format:  \(lm.chatFormat.rawValue)\(lm.defaultSystemPrompt.map { "; default system prompt: \"\($0)\"" } ?? ""); stops at \(lm.stopIDs.sorted().map { name($0) }.joined(separator: ", "))")
    }
}
