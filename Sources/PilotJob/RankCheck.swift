import Foundation
import PilotComm
import PilotCore

/// A check that every rank runs on its own files (its LM copy, its shard), with one clear report.
///
/// Each rank runs `body`; the ranks then agree (a gather to rank 0 of every failure's message) on
/// whether all of them succeeded. If any failed, rank 0 throws one error that lists each failing rank
/// and its message, and the other ranks wait for rank 0's abort instead of printing the same thing
/// again, so a job of 10 ranks prints the reason once. No rank is left in a collective.
public enum RankCheck {
    /// - Parameters:
    ///   - what: the check, for the message ("loading the LM").
    ///   - label: how a rank is named in the message (e.g. "rank 3 (client 2)").
    ///   When the ranks run on more than one host, each failing rank's host is added ("rank 3 (client 2) on host node7").
    public static func run<T>(_ what: String, on world: any Communicator, label: (Int) -> String = { "rank \($0)" },
                              _ body: () throws -> T) throws -> T {
        var result: T? = nil
        var failure = ""
        do { result = try body() } catch { failure = "\(error)" }
        if world.size == 1 {
            if let result { return result }
            throw PilotError.message("\(what) failed: \(failure)")
        }
        let messages = try world.gatherv(Array(failure.utf8), root: 0)
        let failed = try world.allreduce(scalar: Int64(failure.isEmpty ? 0 : 1), op: .sum)
        if failed == 0, let result { return result }
        // on a job that spans hosts, each failing rank is named with its host (a node's missing file)
        let hosts = try world.gatherv(Array(type(of: world).hostName.utf8), root: 0).map { String(decoding: $0, as: UTF8.self) }
        if world.rank == 0 {
            let names = (0..<world.size).map { Set(hosts).count > 1 ? "\(label($0)) on host \(hosts[$0])" : label($0) }
            let label = { (r: Int) -> String in names[r] }
            let failing = messages.enumerated().filter { !$0.element.isEmpty }
            let texts = Set(failing.map(\.element))
            if texts.count == 1 && failing.count > 1 {
                // the same reason everywhere (shared files): once, not once per rank
                let ranks = failing.count == world.size ? "every rank" : failing.map { label($0.offset) }.joined(separator: ", ")
                throw PilotError.message("\(what) failed on \(ranks), each with: \(String(decoding: texts.first!, as: UTF8.self))")
            }
            let lines = failing.map { "\(label($0.offset)): \(String(decoding: $0.element, as: UTF8.self))" }
            throw PilotError.message("\(what) failed on \(failed) of \(world.size) ranks:\n  " + lines.joined(separator: "\n  "))
        }
        // Rank 0 reports and aborts the job; give it time before this rank's own exit ends it.
        usleep(3_000_000)
        // Its own failure is in rank 0's report already; do not print it a second time.
        throw PilotError.aborted(operation: what, rank: world.rank, cause: "rank 0 lists every failing rank and why")
    }
}
