import Foundation

/// Linear warm-up from 0 to `peak` over `warmupSteps`, then a cosine decay to `minimum` at `totalSteps`
/// (held there afterwards). Steps count from 0.
public struct LRSchedule: Codable, Sendable, Equatable {
    public var peak: Float
    public var minimum: Float
    public var warmupSteps: Int
    public var totalSteps: Int

    public init(peak: Float, minimum: Float = 0, warmupSteps: Int = 0, totalSteps: Int) {
        self.peak = peak; self.minimum = minimum; self.warmupSteps = warmupSteps; self.totalSteps = totalSteps
    }

    public func rate(at step: Int) -> Float {
        if step < warmupSteps { return peak * Float(step + 1) / Float(warmupSteps) }
        let span = max(1, totalSteps - warmupSteps)
        let progress = min(1, Double(step - warmupSteps) / Double(span))
        let cosine = 0.5 * (1 + Foundation.cos(Double.pi * progress))
        return minimum + (peak - minimum) * Float(cosine)
    }
}
