import PilotCore

/// Why `Generator.generate` stopped.
public enum StopReason: Sendable, Equatable, CustomStringConvertible {
    case stopToken(Int32)
    case maxNewTokens
    /// The KV cache holds `maxContext` positions and no further token fits.
    case contextFull(Int)

    public var description: String {
        switch self {
        case .stopToken(let id): return "stop token \(id)"
        case .maxNewTokens: return "maximum number of new tokens reached"
        case .contextFull(let n): return "context full: \(n) positions (the model's maxContext) are used; shorten the prompt or make the model with a larger maxContext"
        }
    }
}

/// Prefill-then-decode generation for one sequence, with its own KV cache.
public final class Generator {
    public let model: LanguageModel
    public let cache: KVCache
    /// Why the last `generate` call stopped.
    public private(set) var stopReason: StopReason = .maxNewTokens

    public init(model: LanguageModel) {
        self.model = model
        cache = model.makeCache(batch: 1)
    }

    /// Prefills `promptIDs` (in chunks of the model's `maxTokens`), then decodes one token at a time
    /// until a token of `stopIDs` comes, `maxNewTokens` are made, or the context is full (`stopReason`
    /// says which). Returns the new tokens WITHOUT the stop token; `onToken` sees each returned token as
    /// it is made (and not the stop token either).
    public func generate(promptIDs: [Int32], maxNewTokens: Int, stopIDs: Set<Int32> = [],
                         sampling: Sampling = .greedy, onToken: (Int32) -> Void = { _ in }) throws -> [Int32] {
        guard !promptIDs.isEmpty else { throw PilotError.invalidArgument("generate: the prompt is empty") }
        guard promptIDs.count < cache.maxLength else {
            throw PilotError.invalidArgument("generate: the prompt has \(promptIDs.count) tokens but the context holds \(cache.maxLength); shorten it or make the model with a larger maxContext")
        }
        let sampler = try Sampler(sampling, vocabSize: model.vocabSize)
        cache.reset()
        var logits: UnsafeBufferPointer<Float>?
        try promptIDs.withUnsafeBufferPointer { all in
            var start = 0
            while start < all.count {
                let n = min(model.maxTokens, all.count - start)
                logits = try model.forward(tokens: UnsafeBufferPointer(rebasing: all[start..<(start + n)]), batch: 1,
                                           cache: cache, logits: .last)
                start += n
            }
        }
        var out: [Int32] = []
        out.reserveCapacity(maxNewTokens)
        var token: [Int32] = [0]
        stopReason = .maxNewTokens
        while out.count < maxNewTokens, let row = logits?.baseAddress {
            let next = sampler.next(row)
            if stopIDs.contains(next) { stopReason = .stopToken(next); return out }
            out.append(next)
            onToken(next)
            if out.count == maxNewTokens { break }
            if cache.length >= cache.maxLength { stopReason = .contextFull(cache.length); return out }
            token[0] = next
            logits = try token.withUnsafeBufferPointer { try model.forward(tokens: $0, batch: 1, cache: cache, logits: .last) }
        }
        return out
    }
}
