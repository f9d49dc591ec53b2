import ArgumentParser
import Dispatch
import Foundation
import PilotData
import PilotFederation
import PilotTensor

extension BenchCommand {
    /// ATA's server step on K random LoRA vectors of P values (3 tasks, n_k from 5 to 50): the three
    /// phases timed apart, once each (they are deterministic and long), and the peak RSS.
    func runATA(clients k: Int, params p: Int) throws {
        guard k >= 2, p >= 1 else { throw ValidationError("--ata-clients must be at least 2 and --ata-params at least 1") }
        print(String(format: "ATA: K = %d clients × P = %d values (%.2f GB of float32 updates)", k, p, Double(k * p) * 4 / 1e9))
        var rng = PilotRNG(seed: 1)
        var vectors: [[Float]] = []
        vectors.reserveCapacity(k)
        for _ in 0..<k { vectors.append((0..<p).map { _ in Float(rng.int(2_000_001) - 1_000_000) * 1e-6 }) }
        let samples = (0..<k).map { _ in 5 + rng.int(46) }
        let tasks = (0..<k).map { $0 % 3 }
        func seconds<R>(_ body: () throws -> R) rethrows -> (R, Double) {
            let t = DispatchTime.now().uptimeNanoseconds
            let r = try body()
            return (r, Double(DispatchTime.now().uptimeNanoseconds - t) / 1e9)
        }
        let (flat, tFlat) = seconds { Aggregate.rows(vectors, length: p) }
        let (distances, tGram) = seconds { Aggregate.pairwiseDistances(flat, clients: k, length: p) }
        let (matrix, tMatrix) = try seconds {
            try Aggregate.ataMixingMatrix(distances: distances, samples: samples, tasks: tasks, selection: .topM, m: min(6, k - 1), normalisation: .normalised)
        }
        let (mixed, tMix) = seconds { Aggregate.mix(vectors, matrix: matrix) }
        precondition(mixed.count == k)
        let gflop = 2 * Double(k) * Double(k) * Double(p) / 1e9
        let rss = BenchCommand.peakRSSMiB()
        let total = tFlat + tGram + tMatrix + tMix
        print(String(format: "copy %.2f s, Gram + distances %.2f s (%.0f GFLOP, %.1f GFLOP/s), top-M matrix %.3f s, mixing %.2f s; total %.2f s; peak RSS %.0f MiB",
                     tFlat, tGram, gflop, gflop / tGram, tMatrix, tMix, total, rss))
        if let json {
            let line = String(format: "{\"bench\": \"ata\", \"blas_core\": \"%@\", \"threads\": %d, \"clients\": %d, \"params\": %d, \"seconds_copy\": %.3f, \"seconds_gram\": %.3f, \"seconds_matrix\": %.4f, \"seconds_mix\": %.3f, \"seconds_total\": %.3f, \"gram_gflop\": %.1f, \"peak_rss_mb\": %.0f, \"loadavg\": %.2f}\n",
                              BLASRuntime.coreName, threads, k, p, tFlat, tGram, tMatrix, tMix, total, gflop, rss, BenchCommand.loadAverage())
            if let h = FileHandle(forWritingAtPath: json) { h.seekToEndOfFile(); h.write(Data(line.utf8)); h.closeFile() }
            else { _ = FileManager.default.createFile(atPath: json, contents: Data(line.utf8)) }
        }
    }
}
