import Foundation
import PilotCore

/// How the next token is chosen from a row of logits.
public enum Sampling: Sendable, Equatable {
    /// Argmax, the lowest id on ties (transformers' `do_sample=False`).
    case greedy
    /// Softmax(logits / temperature), restricted to the smallest set of most likely tokens whose
    /// probability reaches `topP` (nucleus sampling; 1 keeps all), drawn with a SplitMix64 seeded by `seed`.
    case temperature(Float, topP: Float = 1, seed: UInt64 = 0)
}

/// Picks tokens from logits; deterministic for a given `Sampling` (the RNG state lives here).
/// Scratch is allocated for the vocabulary once, so sampling a step allocates nothing.
public final class Sampler {
    public let sampling: Sampling
    public let vocabSize: Int
    private var rng: SplitMix64
    private let probs: UnsafeMutablePointer<Float>   // [V]
    private let order: UnsafeMutablePointer<Int32>   // [V] candidate ids, most likely first

    public init(_ sampling: Sampling, vocabSize: Int) throws {
        if case let .temperature(t, p, _) = sampling {
            guard t.isFinite, t > 0, p.isFinite, p > 0, p <= 1 else {
                throw PilotError.invalidArgument("sampling: temperature must be > 0 and top_p in (0, 1] (got \(t), \(p)); use greedy for temperature 0")
            }
        }
        guard vocabSize > 0 else { throw PilotError.invalidArgument("sampling: empty vocabulary") }
        self.sampling = sampling; self.vocabSize = vocabSize
        if case let .temperature(_, _, seed) = sampling { rng = SplitMix64(seed: seed) } else { rng = SplitMix64(seed: 0) }
        probs = .allocate(capacity: vocabSize); order = .allocate(capacity: vocabSize)
    }

    deinit { probs.deallocate(); order.deallocate() }

    /// Argmax of `logits[0..<count]`, the lowest index on ties (NaN never wins).
    public static func argmax(_ logits: UnsafePointer<Float>, count: Int) -> Int32 {
        var best = 0, bestValue = -Float.infinity
        for i in 0..<count where logits[i] > bestValue { best = i; bestValue = logits[i] }
        return Int32(best)
    }

    /// The next token from one row of `vocabSize` logits.
    public func next(_ logits: UnsafePointer<Float>) -> Int32 {
        switch sampling {
        case .greedy:
            return Sampler.argmax(logits, count: vocabSize)
        case let .temperature(temperature, topP, _):
            let V = vocabSize
            let m = logits[Int(Sampler.argmax(logits, count: V))]
            var sum: Float = 0
            for i in 0..<V {
                let e = logits[i].isNaN ? 0 : expf((logits[i] - m) / temperature)
                probs[i] = e; sum += e
            }
            var n = V
            for i in 0..<V { order[i] = Int32(i) }
            if topP < 1 {
                // most likely first, lower id first among equals: a fixed order, so a seed reproduces
                let p = probs
                var candidates = UnsafeMutableBufferPointer(start: order, count: V)
                candidates.sort { a, b in
                    let pa = p[Int(a)], pb = p[Int(b)]
                    return pa != pb ? pa > pb : a < b
                }
                var cumulative: Float = 0
                n = 0
                while n < V {
                    cumulative += probs[Int(order[n])]
                    n += 1
                    if cumulative >= topP * sum { break }
                }
            }
            var kept: Float = 0
            for j in 0..<n { kept += probs[Int(order[j])] }
            let u = Float(Double(rng.next() >> 11) * 0x1p-53) * kept
            var acc: Float = 0
            for j in 0..<n {
                acc += probs[Int(order[j])]
                if u < acc { return order[j] }
            }
            return order[n - 1]
        }
    }
}
