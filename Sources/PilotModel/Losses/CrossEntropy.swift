import Foundation
import PilotTensor

// Shape letters: M rows (positions with a target), V vocabulary.

/// Softmax cross-entropy over logits [M,V] with targets [M]; a negative target masks the row out
/// (only answer tokens carry a loss). The loss is the mean over unmasked rows.
public enum CrossEntropy {
    /// Returns (mean loss, number of unmasked rows). When `dlogits` is given, writes
    /// ∂(gradScale · mean loss)/∂logits into it (zero rows for masked positions); it may alias `logits`.
    /// `normalizer` replaces the row count in the gradient's mean (for rows split over several calls).
    @inlinable
    @discardableResult
    public static func forwardBackward(logits: UnsafePointer<Float>, targets: UnsafePointer<Int32>,
                                       rows: Int, vocab: Int, dlogits: UnsafeMutablePointer<Float>?,
                                       gradScale: Float = 1, normalizer: Int? = nil) -> (loss: Double, count: Int) {
        var count = 0
        for m in 0..<rows where targets[m] >= 0 { count += 1 }
        guard count > 0 else {
            if let dlogits { dlogits.update(repeating: 0, count: rows * vocab) }
            return (0, 0)
        }
        let g = gradScale / Float(normalizer ?? count)
        var total = 0.0
        for m in 0..<rows {
            let row = logits + m * vocab
            let t = Int(targets[m])
            guard t >= 0 else {
                if let dlogits { (dlogits + m * vocab).update(repeating: 0, count: vocab) }
                continue
            }
            let mx = VectorMath.max(row, count: vocab)
            let lse: Float
            if let dlogits {
                // softmax into dlogits (may alias logits), then scale to the gradient
                let d = dlogits + m * vocab
                let rowT = row[t]
                let s = VectorMath.expShifted(row, into: d, count: vocab, shift: mx)
                lse = mx + Foundation.log(s)
                total += Double(lse - rowT)
                VectorMath.scale(d, count: vocab, by: g / s)
                d[t] -= g
            } else {
                var s = Float8(repeating: 0)
                var j = 0
                while j + 8 <= vocab { s += VectorMath.exp(VectorMath.load(row + j) - mx); j += 8 }
                var tail: Float = 0
                while j < vocab { tail += VectorMath.exp(row[j] - mx); j += 1 }
                lse = mx + Foundation.log(s.sum() + tail)
                total += Double(lse - row[t])
            }
        }
        return (total / Double(count), count)
    }
}
