import PilotCore

/// Which rank hosts which clients (docs/design.md §6): world rank 0 is the server; the K clients are spread
/// over the R − 1 client ranks in contiguous blocks, in client order. With `clientsPerRank` = 0
/// (the default) the blocks are as even as the world size allows: the first K mod (R − 1) ranks
/// host ⌈K/(R − 1)⌉ clients and the others ⌊K/(R − 1)⌋, so K = 9 on 4 client ranks gives
/// 3, 2, 2, 2. With `clientsPerRank` = c > 0 every client rank hosts exactly c clients, so c must
/// divide K and the world size must be K/c + 1.
///
/// Nothing a client computes depends on its rank (data order, initialisation and aggregation are
/// functions of the client index), so the placement changes where work runs, not its result.
public struct Placement: Sendable, Equatable {
    public let clientCount: Int
    /// R − 1, the ranks that host clients.
    public let clientRanks: Int

    public init(clients k: Int, worldSize: Int, clientsPerRank c: Int = 0) throws {
        guard k >= 1 else { throw PilotError.invalidArgument("the scenario has no clients") }
        if c > 0 {
            guard k % c == 0 else {
                throw PilotError.invalidArgument("run.clients_per_rank = \(c) does not divide the scenario's \(k) clients; choose a divisor of \(k) (e.g. \(Self.divisors(k).map(String.init).joined(separator: ", "))), or 0 to spread the clients over the world size")
            }
            guard worldSize == k / c + 1 else {
                throw PilotError.invalidArgument("world size is \(worldSize), but \(k) clients at run.clients_per_rank = \(c) need \(k / c) client ranks: run with -np \(k / c + 1) (rank 0 is the server), or set run.clients_per_rank = 0 to use any world size from 2 to \(k + 1)")
            }
        }
        guard worldSize >= 2 else {
            throw PilotError.invalidArgument("world size is \(worldSize), but a federated run needs a server and at least one client rank: run with -np 2 to -np \(k + 1) (rank 0 is the server)")
        }
        guard worldSize - 1 <= k else {
            throw PilotError.invalidArgument("world size is \(worldSize): \(worldSize - 1) client ranks for only \(k) clients would leave rank(s) \(k + 1)…\(worldSize - 1) without a client; run with at most -np \(k + 1) (rank 0 is the server)")
        }
        clientCount = k
        clientRanks = worldSize - 1
    }

    /// First client of client rank index i (0-based, i.e. world rank i + 1); i = clientRanks gives K.
    func blockStart(_ i: Int) -> Int {
        let base = clientCount / clientRanks, extra = clientCount % clientRanks
        return i * base + min(i, extra)
    }

    /// The clients world rank `rank` hosts (empty for the server).
    public func clients(onRank rank: Int) -> Range<Int> {
        guard rank >= 1 && rank <= clientRanks else { return 0..<0 }
        return blockStart(rank - 1)..<blockStart(rank)
    }

    /// The world rank that hosts `client`.
    public func rank(of client: Int) -> Int {
        precondition(client >= 0 && client < clientCount, "client \(client) out of 0..<\(clientCount)")
        var lo = 0, hi = clientRanks - 1
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if blockStart(mid) <= client { lo = mid } else { hi = mid - 1 }
        }
        return lo + 1
    }

    /// How a rank is named in messages: "rank 0 (server)", "rank 3 (client 2)", "rank 2 (clients 3–5)".
    public func label(_ rank: Int) -> String {
        if rank == 0 { return "rank 0 (server)" }
        let c = clients(onRank: rank)
        if c.count == 1 { return "rank \(rank) (client \(c.lowerBound))" }
        return c.isEmpty ? "rank \(rank)" : "rank \(rank) (clients \(c.lowerBound)–\(c.upperBound - 1))"
    }

    static func divisors(_ k: Int) -> [Int] { (1...k).filter { k % $0 == 0 }.prefix(6).map { $0 } }
}
