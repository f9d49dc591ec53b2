import PilotCore
@testable import PilotModel
import Testing

/// The decode step's attention scores (`LanguageModel.dotScores`, four keys side by side) against one
/// plain loop per key, bit for bit: the multimodal model's evaluation decodes through it, and its greedy
/// tokens are in committed results.
@Suite("decode attention scores")
struct AttentionScoresTests {
    @Test("four keys at a time give the bits of one loop per key", arguments: [1, 3, 4, 7, 64, 130])
    func scoresMatchPlainLoop(count: Int) {
        let D = 64, ld = 3 * D + 5
        var rng = SplitMix64(seed: UInt64(count))
        func value() -> Float { Float(rng.next() >> 40) / Float(1 << 23) - 1 }
        let q = (0..<D).map { _ in value() }, keys = (0..<(count * ld)).map { _ in value() * 3 }
        var fast = [Float](repeating: .nan, count: count)
        q.withUnsafeBufferPointer { qp in keys.withUnsafeBufferPointer { kp in fast.withUnsafeMutableBufferPointer { sp in
            LanguageModel.dotScores(q: qp.baseAddress!, keys: kp.baseAddress! + 2, stride: ld, count: count, width: D, into: sp.baseAddress!)
        } } }
        let plain = (0..<count).map { j -> Float in
            var d: Float = 0
            for i in 0..<D { d += q[i] * keys[2 + j * ld + i] }
            return d
        }
        #expect(fast.map(\.bitPattern) == plain.map(\.bitPattern))
    }
}
