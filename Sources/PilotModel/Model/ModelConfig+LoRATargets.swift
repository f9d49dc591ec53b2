extension ModelConfig {
    /// The linears that get LoRA, in layer order, with their input and output widths: a target's
    /// A is [inFeatures, r] and its B [r, outFeatures].
    public var loraTargetShapes: [(name: String, inFeatures: Int, outFeatures: Int)] {
        let targets = Set(loraTargetNames)
        return LanguageModel.linearShapes(self).filter { targets.contains($0.name) }.map { ($0.name, $0.inF, $0.outF) }
    }
}
