import Foundation

/// Mean and spread of one number over the seeds of a configuration.
public struct SeedStatistic: Sendable, Equatable {
    /// Arithmetic mean over the seeds.
    public let mean: Double
    /// Sample standard deviation, √(Σ(x−mean)²/(n−1)); nil for a single seed, where it is undefined.
    public let std: Double?
    /// Number of seeds n.
    public let count: Int

    /// `values` holds one number per seed and must not be empty.
    public init(_ values: [Double]) {
        precondition(!values.isEmpty, "SeedStatistic needs at least one value")
        count = values.count
        mean = values.reduce(0, +) / Double(values.count)
        if values.count > 1 {
            let m = mean
            std = (values.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(values.count - 1)).squareRoot()
        } else {
            std = nil
        }
    }
}
