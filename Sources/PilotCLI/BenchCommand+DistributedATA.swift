import ArgumentParser
import Foundation
import PilotComm
import PilotCore
import PilotFederation
import PilotJob
import PilotTensor

extension BenchCommand {
    /// `pilot bench --ata-clients K --ata-params P` under mpirun: ATA across ranks (`DistributedATA`).
    /// Each client rank makes its own clients' vectors (seeded by client index, so every placement has
    /// the same data), the server holds none; rank 0 reports the phases' seconds and every rank's peak RSS.
    func runDistributedATA(clients k: Int, params p: Int, block: Int) throws {
        let world = try MPIRuntime.world()
        guard k >= world.size - 1 else { throw ValidationError("--ata-clients \(k) is fewer than the \(world.size - 1) client ranks") }
        let placement = try Placement(clients: k, worldSize: world.size)
        let owned = (0..<world.size).map { placement.clients(onRank: $0) }
        if world.rank == 0 {
            print(String(format: "pilot bench: ATA across ranks: K = %d clients × P = %d values (%.2f GB of float32 updates) on %d ranks (the server and %d client ranks), blocks of %d values, kernel %@",
                         k, p, Double(k) * Double(p) * 4 / 1e9, world.size, world.size - 1, block, "\(GEMVKernel.best)"))
        }
        var mine: [[Float]] = owned[world.rank].map { c in
            var rng = SplitMix64(seed: 0x5eed_0000 + UInt64(c))
            return (0..<p).map { _ in Float(Int(rng.next() % 2_000_001) - 1_000_000) * 1e-6 }
        }
        let samples = (0..<k).map { 5 + ($0 * 7919) % 46 }, tasks = (0..<k).map { $0 % 3 }
        try world.barrier()
        let t0 = DispatchTime.now().uptimeNanoseconds
        let r = try DistributedATA.run(world: world, owned: owned, mine: &mine, length: p, samples: samples, tasks: tasks,
                                       selection: .topM, m: min(6, k - 1), normalisation: .normalised, block: block)
        try world.barrier()
        let total = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
        // a checksum of the mixed vectors, in client order: equal on every placement
        let sums = mine.map { $0.reduce(0.0) { $0 + Double($1) } }
        let allSums = try world.gatherv(sums, root: 0).flatMap { $0 }
        let rss = try world.gather([BenchCommand.peakRSSMiB()], root: 0)
        guard world.rank == 0 else { return }
        var digest = SHA256()
        for s in allSums { withUnsafeBytes(of: s.bitPattern) { digest.update($0) } }
        let clientPeak = rss.dropFirst().max() ?? 0
        print(String(format: "distances %.2f s, matrix %.3f s, mixing %.2f s (rank 0's clock); total %.2f s", r.seconds.distances, r.seconds.matrix, r.seconds.mixing, total))
        print(String(format: "peak RSS: server %.0f MiB; client ranks %@ MiB (largest %.0f); K·P floats are %.0f MiB in all",
                     rss[0], rss.dropFirst().map { String(format: "%.0f", $0) }.joined(separator: ", "), clientPeak, Double(k) * Double(p) * 4 / 1_048_576))
        print("mixed vectors' checksum (SHA-256 of the per-client sums): \(SHA256.hex(digest.finalize()).prefix(16))")
        if let json {
            let line = String(format: "{\"bench\": \"ata_distributed\", \"ranks\": %d, \"clients\": %d, \"params\": %d, \"block\": %d, \"seconds_distances\": %.3f, \"seconds_matrix\": %.4f, \"seconds_mix\": %.3f, \"seconds_total\": %.3f, \"server_peak_rss_mb\": %.0f, \"client_peak_rss_mb\": [%@], \"loadavg\": %.2f}\n",
                              world.size, k, p, block, r.seconds.distances, r.seconds.matrix, r.seconds.mixing, total, rss[0],
                              rss.dropFirst().map { String(format: "%.0f", $0) }.joined(separator: ", "), BenchCommand.loadAverage())
            if let h = FileHandle(forWritingAtPath: json) { h.seekToEndOfFile(); h.write(Data(line.utf8)); h.closeFile() }
            else { _ = FileManager.default.createFile(atPath: json, contents: Data(line.utf8)) }
        }
    }
}
