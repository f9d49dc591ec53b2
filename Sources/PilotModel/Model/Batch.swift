import PilotCore

// Shape letters: B sequences, P visual tokens, L = T − P text tokens, T context.

/// One batch for the model. Sequence layout (docs/design.md §2): [P visual tokens][BOS] instruction [SEP] answer [EOS],
/// right-padded to T. `targets[b·T + t]` is the token that position t must predict, or −1 (no loss);
/// only answer tokens and EOS carry a target.
public struct Batch: Sendable {
    public enum Visual: Sendable {
        /// Images [B, channels, S, S], run through the vision encoder.
        case pixels([Float])
        /// Precomputed vision features Hv [B, P, Dv] (the vision encoder is frozen after pretraining).
        case features([Float])
    }
    public var size: Int
    public var visual: Visual
    /// [B, L] text token ids (padding may be any valid id).
    public var tokens: [Int32]
    /// [B, T] next-token targets per position, −1 where there is no loss.
    public var targets: [Int32]
    /// [B] valid length (P + text length) of each sequence; nil means all T positions are valid.
    public var lengths: [Int32]?

    public init(size: Int, visual: Visual, tokens: [Int32], targets: [Int32], lengths: [Int32]? = nil) {
        self.size = size; self.visual = visual; self.tokens = tokens; self.targets = targets; self.lengths = lengths
    }

    /// Targets for text tokens [B, L] where the answer (incl. EOS) of sequence b occupies text positions
    /// answerStart[b] ..< textLength[b]: the position before each answer token predicts it.
    public static func answerTargets(tokens: [Int32], batch: Int, visualTokens P: Int, contextLength T: Int,
                                     answerStart: [Int], textLength: [Int]) -> [Int32] {
        let L = T - P
        var t = [Int32](repeating: -1, count: batch * T)
        for b in 0..<batch {
            for j in max(answerStart[b], 1)..<textLength[b] {
                t[b * T + P + j - 1] = tokens[b * L + j]
            }
        }
        return t
    }

    func validate(_ c: ModelConfig, maxBatch: Int) throws {
        let P = c.visualTokens, T = c.contextLength, L = T - P
        guard size >= 1 && size <= maxBatch else {
            throw PilotError.invalidArgument("batch of \(size) sequences; this model was built for 1...\(maxBatch)")
        }
        guard tokens.count == size * L else { throw PilotError.invalidArgument("batch tokens: need \(size)×\(L) = \(size * L) ids, got \(tokens.count)") }
        guard targets.count == size * T else { throw PilotError.invalidArgument("batch targets: need \(size)×\(T) = \(size * T), got \(targets.count)") }
        if tokens.contains(where: { $0 < 0 || Int($0) >= c.vocabSize }) || targets.contains(where: { Int($0) >= c.vocabSize }) {
            throw PilotError.invalidArgument("batch: token id outside 0..<\(c.vocabSize)")
        }
        switch visual {
        case let .pixels(p):
            let n = size * c.channels * c.imageSize * c.imageSize
            guard p.count == n else { throw PilotError.invalidArgument("batch pixels: need \(n) values, got \(p.count)") }
        case let .features(f):
            let n = size * P * c.visionWidth
            guard f.count == n else { throw PilotError.invalidArgument("batch features: need \(n) values, got \(f.count)") }
        }
        if let lengths {
            let low = P + c.visualOffset + 1
            guard lengths.count == size, lengths.allSatisfy({ Int($0) >= low && Int($0) <= T }) else {
                throw PilotError.invalidArgument("batch lengths: need \(size) values in \(low)...\(T)")
            }
        }
    }
}
