import Foundation
import PilotTensor

// Shape letters: M rows (positions with a target), V vocabulary.

/// Softmax cross-entropy over logits [M,V] with targets [M]; a negative target masks the row out
/// (only answer tokens carry a loss). The loss is the mean over unmasked rows.
public enum CrossEntropy {
    /// Returns (mean loss, number of unmasked rows). When `dlogits` is given, writes
    /// ∂(gradScale · mean loss)/∂logits into it (zero rows for masked positions); it may alias `logits`.
    @inlinable
    @discardableResult
    public static func forwardBackward(logits: UnsafePointer<Float>, targets: UnsafePointer<Int32>,
                                       rows: Int, vocab: Int, dlogits: UnsafeMutablePointer<Float>?,
                                       gradScale: Float = 1) -> (loss: Double, count: Int) {
        var count = 0
        for m in 0..<rows where targets[m] >= 0 { count += 1 }
        guard count > 0 else {
            if let dlogits { dlogits.update(repeating: 0, count: rows * vocab) }
            return (0, 0)
        }
        let g = gradScale / Float(count)
        var total = 0.0
        for m in 0..<rows {
            let row = logits + m * vocab
            let t = Int(targets[m])
            guard t >= 0 else {
                if let dlogits { (dlogits + m * vocab).update(repeating: 0, count: vocab) }
                continue
            }
            var mx = -Float.infinity
            for j in 0..<vocab { mx = max(mx, row[j]) }
            var s: Float = 0
            for j in 0..<vocab { s += Foundation.exp(row[j] - mx) }
            let lse = mx + Foundation.log(s)
            total += Double(lse - row[t])
            if let dlogits {
                let d = dlogits + m * vocab
                for j in 0..<vocab { d[j] = Foundation.exp(row[j] - lse) * g }
                d[t] -= g
            }
        }
        return (total / Double(count), count)
    }
}
