import PilotCore
import PilotTensor
import Testing

/// `SquaredDistances` (pilot_sqdist_rows): the same bits on every kernel level, symmetric in its two
/// vectors, and within float rounding of the Double sum.
@Suite("Squared distances kernel")
struct SquaredDistancesTests {
    @Test("every level gives the same bits, ‖a − b‖² = ‖b − a‖² bit for bit, and it is within 1e-5 of the Double sum")
    func levelsAgree() {
        var rng = SplitMix64(seed: 7)
        func value() -> Float { Float(Int(rng.next() % 2_000_001) - 1_000_000) * 1e-6 }
        for cols in [1, 63, 64, 65, 200, 2048, 3001] {
            let rows = 5
            let b = (0..<(rows * cols)).map { _ in value() }
            let a = (0..<cols).map { _ in value() }
            var results: [[Float]] = []
            for level in GEMVKernel.available {
                var y = [Float](repeating: -1, count: rows)
                SquaredDistances.rows(b, a, into: &y, rows: rows, cols: cols, kernel: level)
                results.append(y)
            }
            for r in results.dropFirst() { #expect(r.map(\.bitPattern) == results[0].map(\.bitPattern), "cols \(cols): levels differ") }
            for r in 0..<rows {
                let row = Array(b[(r * cols)..<((r + 1) * cols)])
                var back: Float = 0
                SquaredDistances.rows(a, row, into: &back, rows: 1, cols: cols)
                #expect(back.bitPattern == results[0][r].bitPattern, "cols \(cols), row \(r): not symmetric")
                var exact = 0.0
                for (x, z) in zip(a, row) { let d = Double(x) - Double(z); exact += d * d }
                #expect(abs(Double(results[0][r]) - exact) <= 1e-5 * exact, "cols \(cols), row \(r): \(results[0][r]) vs \(exact)")
            }
        }
    }
}
