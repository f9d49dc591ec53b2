import Foundation
import PilotComm
import PilotCore
import PilotTensor

extension RoundLoop {
    /// Restores the state after committed round `round`: the server's state and metrics rows on rank 0,
    /// each client's state on the rank that hosts it now. Collective.
    func restore(round: Int) throws {
        let world = federation.world
        var digests: [String] = []
        var storedText = ""
        if federation.isServer {
            let (meta, server, d) = try RoundCheckpoint.readRound(run: runDirectory, round: round)
            storedText = meta.configText
            // the inputs must be the ones the run was trained on (#18 item 7)
            if !meta.baseHash.isEmpty && meta.baseHash != baseHash {
                throw PilotError.message("refusing to resume \(runDirectory): the base checkpoint \(basePath) changed since round \(round) (SHA-256 \(meta.baseHash.prefix(16))… then, \(baseHash.prefix(16))… now); restore it, or start a new run")
            }
            // the same bits need the same kernel and threads (#18 item 6)
            if !meta.blasCore.isEmpty && (meta.blasCore != BLASRuntime.coreName || meta.threads != Parallel.threads) {
                let what = "round \(round) was computed with OpenBLAS's \(meta.blasCore) kernel and \(meta.threads) engine thread(s) per rank; this resume runs \(BLASRuntime.coreName) with \(Parallel.threads)"
                if config.optionalBool("run.strict_reproducibility") == true {
                    throw PilotError.message("refusing to resume \(runDirectory): \(what), so it would not continue bitwise (run.strict_reproducibility = true). Resume on a node of the same CPU kind with the same --threads, or pin the kernel with run.blas_core / OPENBLAS_CORETYPE=\(meta.blasCore)")
                }
                report("warning: \(what); the run continues correctly but not bitwise (pin it with OPENBLAS_CORETYPE=\(meta.blasCore) and --threads \(meta.threads), or refuse with run.strict_reproducibility = true)")
            }
            digests = d
            serverState = server
            if FileManager.default.fileExists(atPath: runDirectory + "/metrics.h5") {
                log = try MetricsLog.read(from: runDirectory + "/metrics.h5")
                log.truncate(to: round)
            } else {
                report("\(runDirectory)/metrics.h5 is missing; rebuilding its rows from the round checkpoints")
            }
            // Rows metrics.h5 lacks (a kill between the round's commit and the metrics write, or a deleted
            // file) come back from the round files, without the timings, which are not stored there.
            let have = Set(log.rounds)
            var rebuilt: [Int] = [], lost: [Int] = []
            for r in 1...round where !have.contains(r) {
                if let row = try RoundCheckpoint.readMetrics(run: runDirectory, round: r) {
                    log.insert(round: r, stage: row.stage, clients: row.clients, server: row.server)
                    rebuilt.append(r)
                } else {
                    lost.append(r)
                }
            }
            if !rebuilt.isEmpty {
                try log.write(to: runDirectory + "/metrics.h5", attributes: metricsAttributes())
                report("metrics.h5 had no row for round(s) \(rebuilt.map(String.init).joined(separator: ", ")); rebuilt from the round checkpoints (losses, steps, scores and bytes; the seconds are NaN)")
            }
            if !lost.isEmpty {
                report("warning: metrics.h5 has no row for round(s) \(lost.map(String.init).joined(separator: ", ")), and those round files predate stored metrics; the rows stay missing")
            }
        }
        storedText = try world.broadcast(string: storedText, root: 0)
        // every rank finds the same difference; RankCheck prints it once
        try RankCheck.run("resuming \(runDirectory)", on: world) {
            let stored = try RunConfig(effectiveFile: storedText, path: RoundCheckpoint.roundFile(runDirectory, round))
            if stored.values != config.values {
                let diff = config.differences(from: stored)
                throw PilotError.message("refusing to resume \(runDirectory): the config differs from the one the run was started with:\n  "
                                         + diff.joined(separator: "\n  ") + "\nresume with the original config, or start a new run directory")
            }
        }
        let allDigests = try world.broadcastSized(Array(digests.joined(separator: "\n").utf8), root: 0)
        let list = String(decoding: allDigests, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        // Each rank reads its own clients' files, whatever ranks wrote them (the placement may differ).
        let mine = federation.localClients
        let read = try RankCheck.run("reading round \(round)'s client states", on: world, label: label) { () -> [Int: TensorDict] in
            var out: [Int: TensorDict] = [:]
            for c in mine {
                out[c] = try RoundCheckpoint.readClient(run: runDirectory, round: round, client: c,
                                                        expectedDigest: c < list.count ? list[c] : nil)
                if let then = try RoundCheckpoint.readShardHash(run: runDirectory, round: round, client: c), !then.isEmpty,
                   let now = shardHashes[c], then != now {
                    throw PilotError.message("client \(c)'s shard \(scenario.clientPath(c)) changed since round \(round) (SHA-256 \(then.prefix(16))… then, \(now.prefix(16))… now); restore it, or start a new run")
                }
            }
            return out
        }
        for (c, s) in read { states[c] = s }
        if world.isRoot { report("resumed \(runDirectory) after round \(round)") }
    }
}
