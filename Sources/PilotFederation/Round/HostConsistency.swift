import Foundation
import PilotComm
import PilotCore
import PilotJob

/// What every host of a job must share: the pilot build it runs and the base checkpoint it reads. On
/// one host both come from one file; across hosts, a node-local install or a node-local copy of the
/// base can differ, and the run would then mix models or code without any other symptom.
enum HostConsistency {
    /// Collective over `world`. Returns at once on a job of one host; otherwise compares every rank's
    /// build ID (`BuildID`) and the SHA-256 of the base checkpoint as the first rank of each host reads
    /// it, and throws (on every rank alike) an error that names each host and its ranks.
    static func check(world: any Communicator, basePath: String) throws {
        let hosts = try world.allgatherv(Array(type(of: world).hostName.utf8)).map { String(decoding: $0, as: UTF8.self) }
        guard Set(hosts).count > 1 else { return }
        let firstOnHost = hosts.firstIndex(of: hosts[world.rank]) == world.rank
        let digest = firstOnHost ? ((try? RoundCheckpoint.fileDigest(basePath)) ?? "unreadable") : ""
        let seen = try world.allgatherv(Array((BuildID.current + "\n" + digest).utf8)).map {
            String(decoding: $0, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        }
        let builds = seen.map { $0[0] }
        if Set(builds).count > 1 {
            throw PilotError.message("the hosts run different pilot builds: " + describe(builds, hosts: hosts)
                + "; install one pilot build on every node (or run it from the shared file system), then start the job again")
        }
        let ranksWithDigest = (0..<world.size).filter { !seen[$0][1].isEmpty }
        let digests = ranksWithDigest.map { seen[$0][1] }
        if Set(digests).count > 1 {
            let byHost = (0..<world.size).map { r in seen[hosts.firstIndex(of: hosts[r])!][1] }
            throw PilotError.message("the hosts read different base checkpoints at '\(basePath)' (run.base): "
                + describe(byHost.map { $0 == "unreadable" ? $0 : "sha256 " + $0.prefix(12) }, hosts: hosts)
                + "; copy one base checkpoint to every node (or keep it on the shared file system), then start the job again")
        }
    }

    /// "build-id:ab12… on tc-h0 (ranks 0–2), build-id:cd34… on tc-h2 (ranks 5–6)": each distinct value
    /// with the hosts and ranks that have it, in rank order.
    static func describe(_ values: [String], hosts: [String]) -> String {
        var order: [String] = []
        for v in values where !order.contains(v) { order.append(v) }
        return order.map { v in
            let ranks = values.indices.filter { values[$0] == v }
            var hostOrder: [String] = []
            for r in ranks where !hostOrder.contains(hosts[r]) { hostOrder.append(hosts[r]) }
            let where_ = hostOrder.map { h in
                let rs = ranks.filter { hosts[$0] == h }
                return "\(h) (rank\(rs.count == 1 ? "" : "s") \(Self.ranges(rs)))"
            }.joined(separator: ", ")
            let shown = v.count > 30 ? String(v.prefix(30)) + "…" : v
            return "\(shown) on \(where_)"
        }.joined(separator: "; ")
    }

    /// [0, 1, 2, 5] → "0–2, 5".
    static func ranges(_ xs: [Int]) -> String {
        var parts: [String] = [], i = 0
        while i < xs.count {
            var j = i
            while j + 1 < xs.count && xs[j + 1] == xs[j] + 1 { j += 1 }
            parts.append(j > i ? "\(xs[i])–\(xs[j])" : "\(xs[i])")
            i = j + 1
        }
        return parts.joined(separator: ", ")
    }
}

extension HostConsistency {
    /// Whether this rank can write to the run directory, which every rank writes its clients' checkpoint
    /// files to (on a cluster: the shared file system): a probe file made and removed. Run inside a
    /// `RankCheck`, so that a node that does not mount it is named before the first round, not at its commit.
    static func probeRunDirectory(_ dir: String, rank: Int) throws {
        let probe = dir + "/.probe-rank-\(rank)"
        let fd = open(probe, O_CREAT | O_WRONLY | O_TRUNC, 0o644)
        guard fd >= 0 else {
            throw PilotError.message("cannot write to the run directory '\(dir)' (\(String(cString: strerror(errno)))): every rank writes its clients' checkpoint files there, so it must be on a file system every node mounts (docs/running.md, \"Several nodes\")")
        }
        close(fd)
        unlink(probe)
    }
}
