import Foundation
import PilotComm
import PilotCore
import PilotJob
import PilotTensor

extension RoundLoop {
    /// Restores the state after committed round `round`: the server's state and metrics rows on rank 0,
    /// each client's state on the rank that hosts it now. Collective.
    func restore(round: Int) throws {
        let world = federation.world
        var digests: [String] = []
        var storedText = ""
        var stored: [Int] = []
        var recordedRanks: [Int] = []
        if federation.isServer {
            let (meta, server, d) = try RoundCheckpoint.readRound(run: runDirectory, round: round)
            storedText = meta.configText
            // the inputs must be the ones the run was trained on (#18 item 7)
            if !meta.baseHash.isEmpty && meta.baseHash != recorder.identity.baseHash {
                throw PilotError.message("refusing to resume \(runDirectory): the base checkpoint \(basePath) changed since round \(round) (SHA-256 \(meta.baseHash.prefix(16))… then, \(recorder.identity.baseHash.prefix(16))… now); restore it, or start a new run")
            }
            // the same bits need the same kernel and threads (#18 item 6)
            let kernelMoved = !meta.bf16Kernel.isEmpty && meta.bf16Kernel != recorder.identity.bf16Kernel
            if kernelMoved || (!meta.blasCore.isEmpty && (meta.blasCore != BLASRuntime.coreName || meta.threads != Parallel.threads)) {
                let bf16 = kernelMoved ? " and its bf16 products on \(meta.bf16Kernel) (now \(recorder.identity.bf16Kernel))" : ""
                let what = "round \(round) was computed with OpenBLAS's \(meta.blasCore) kernel and \(meta.threads) engine thread(s) per rank\(bf16); this resume runs \(BLASRuntime.coreName) with \(Parallel.threads)"
                if settings.strictReproducibility {
                    throw PilotError.message("refusing to resume \(runDirectory): \(what), so it would not continue bitwise (run.strict_reproducibility = true). Resume on a node of the same CPU kind with the same --threads, or pin the kernel with run.blas_core / OPENBLAS_CORETYPE=\(meta.blasCore)")
                }
                emit(.message("warning: \(what); the run continues correctly but not bitwise (pin it with OPENBLAS_CORETYPE=\(meta.blasCore) and --threads \(meta.threads), or refuse with run.strict_reproducibility = true)"))
            }
            digests = d
            serverState = try host.coder?.restoreServer(server) ?? server
            stored = meta.excludedClients
            recordedRanks = meta.loraRanks
            try recorder.restoreLog(round: round)
        }
        storedText = try world.broadcast(string: storedText, root: 0)
        // the clients an earlier resume excluded stay excluded
        let excluded = try world.broadcastSized(stored.map(Int64.init), root: 0)
        excludedClients.formUnion(excluded.map(Int.init))
        let recorded = try world.broadcastSized(recordedRanks.map(Int64.init), root: 0).map(Int.init)
        // every rank finds the same difference; RankCheck prints it once
        try RankCheck.run("resuming \(runDirectory)", on: world) {
            let stored = try RunConfig(effectiveFile: storedText, path: RoundCheckpoint.roundFile(runDirectory, round))
            // a client's rank first: its state holds factors of that rank
            try RunSettings(config).checkResumedRanks(before: RunSettings(stored), recorded: recorded, clients: federation.clientCount,
                                                      run: runDirectory) { [basePath] in try BaseCheckpoint.readMetadata(path: basePath).config.loraRank }
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
        let read = try RankCheck.run("reading round \(round)'s client states", on: world, label: { [placement = federation.placement] in placement.label($0) }) { () -> [Int: NamedTensors] in
            var out: [Int: NamedTensors] = [:]
            for c in mine {
                out[c] = try RoundCheckpoint.readClient(run: runDirectory, round: round, client: c,
                                                        expectedDigest: c < list.count ? list[c] : nil)
                if let then = try RoundCheckpoint.readShardHash(run: runDirectory, round: round, client: c), !then.isEmpty,
                   let now = host.inputs.shardHashes[c], then != now {
                    throw PilotError.message("client \(c)'s shard \(scenario.clientPath(c)) changed since round \(round) (SHA-256 \(then.prefix(16))… then, \(now.prefix(16))… now); restore it, or start a new run")
                }
            }
            return out
        }
        for (c, s) in read { host.states[c] = try host.coder?.restoreClient(c, s) ?? s }
        emit(.message("resumed \(runDirectory) after round \(round)"))
    }
}
