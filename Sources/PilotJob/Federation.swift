import Dispatch
import PilotComm
import PilotCore

/// The public facts of a federation, the only things the server learns about clients: each
/// client's task and its number of training examples n_k. This is all a strategy's pure
/// `aggregate` may consult besides the updates.
public struct Roster: Sendable, Equatable {
    /// Task id of every client, indexed by client.
    public var clientTasks: [Int]
    /// n_k of every client.
    public var clientSamples: [Int]
    public var numTasks: Int
    /// Each client's LoRA rank and alpha (nil: one rank for all, the base's or `model.lora_rank`).
    public var lora: ClientLoRA?
    public var clientCount: Int { clientTasks.count }

    public init(clientTasks: [Int], clientSamples: [Int], numTasks: Int, lora: ClientLoRA? = nil) {
        self.clientTasks = clientTasks; self.clientSamples = clientSamples; self.numTasks = numTasks; self.lora = lora
    }
}

/// The communicators and the public facts of one federated job (docs/design.md §6).
///
/// World rank 0 is the server; the client ranks host the K clients in contiguous blocks
/// (`Placement`). `clients` holds the client ranks (the server is not a member). Every collective
/// of a round goes through `RoundExchange` on `world`; strategies never see a communicator.
public struct Federation {
    public let world: CountingCommunicator
    public let clients: (any Communicator)?
    public let roster: Roster
    public let placement: Placement
    /// Which clients train in each round.
    public let sampling: ClientSampling
    /// Seconds the server spent in aggregation math (inside the exchange) since reset.
    public let aggregationClock = AggregationClock()

    public var isServer: Bool { world.rank == 0 }
    /// The clients this rank hosts, in client order (empty on the server).
    public var localClients: Range<Int> { placement.clients(onRank: world.rank) }
    public var clientTasks: [Int] { roster.clientTasks }
    public var clientSamples: [Int] { roster.clientSamples }
    public var numTasks: Int { roster.numTasks }
    public var clientCount: Int { roster.clientCount }

    /// The public facts of a federation without any communication (offline evaluation, export).
    public init(offline clientTasks: [Int], numTasks: Int) {
        world = CountingCommunicator(OfflineCommunicator())
        clients = nil
        roster = Roster(clientTasks: clientTasks, clientSamples: Array(repeating: 0, count: clientTasks.count), numTasks: numTasks)
        placement = try! Placement(clients: max(clientTasks.count, 1), worldSize: 2)
        sampling = .everyone
    }

    /// Builds the communicators. Collective: every rank calls it with the same `clientTasks` and
    /// placement; each client rank passes the sample counts of its own clients (client order),
    /// which every rank learns.
    public init(world base: any Communicator, clientTasks: [Int], numTasks: Int, placement: Placement,
                localSamples: [Int], sampling: ClientSampling = .everyone, lora: ClientLoRA? = nil) throws {
        guard base.size == placement.clientRanks + 1, placement.clientCount == clientTasks.count else {
            throw PilotError.invalidArgument("the job has \(base.size) ranks but the placement is for \(placement.clientRanks + 1) ranks and \(placement.clientCount) clients (the scenario has \(clientTasks.count))")
        }
        world = base as? CountingCommunicator ?? CountingCommunicator(base)
        let mine = placement.clients(onRank: world.rank)
        guard localSamples.count == mine.count else {
            throw PilotError.invalidArgument("rank \(world.rank) hosts \(mine.count) clients but passed \(localSamples.count) sample counts")
        }
        clients = try world.split(color: world.rank == 0 ? nil : 0, key: world.rank, name: "clients")
        let counts = try world.allgatherv(localSamples.map(Int64.init))
        roster = Roster(clientTasks: clientTasks, clientSamples: counts.flatMap { $0 }.map { Int($0) }, numTasks: numTasks, lora: lora)
        self.placement = placement
        self.sampling = sampling
        world.resetCounts()
    }
}

/// A one-rank communicator for code paths that need a `Federation` but no peers.
final class OfflineCommunicator: Communicator, @unchecked Sendable {
    var rank: Int { 0 }
    var size: Int { 1 }
    var worldRank: Int { 0 }
    var name: String { "offline" }
    func split(color: Int?, key: Int, name: String) throws -> (any Communicator)? { color == nil ? nil : self }
    func barrier() throws {}
    func broadcast<T: CommElement>(_ buffer: UnsafeMutableBufferPointer<T>, root: Int) throws {}
    func allreduce<T: CommElement>(_ buffer: UnsafeMutableBufferPointer<T>, op: ReduceOp) throws {}
    func gatherv<T: CommElement>(_ send: UnsafeBufferPointer<T>, root: Int) throws -> [[T]] { [Array(send)] }
    func scatterv<T: CommElement>(_ chunks: [[T]], root: Int) throws -> [T] { chunks.first ?? [] }
    func allgatherv<T: CommElement>(_ send: UnsafeBufferPointer<T>) throws -> [[T]] { [Array(send)] }
    func alltoallv<T: CommElement>(_ chunks: [[T]]) throws -> [[T]] { [chunks.first ?? []] }
}

/// Accumulates wall time of the server's aggregation steps.
public final class AggregationClock: @unchecked Sendable {
    public private(set) var seconds = 0.0
    public init() {}
    public func reset() { seconds = 0 }
    public func time<R>(_ body: () throws -> R) rethrows -> R {
        let start = DispatchTime.now().uptimeNanoseconds
        defer { seconds += Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 }
        return try body()
    }
}
