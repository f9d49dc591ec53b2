import Dispatch
import PilotComm
import PilotCore

/// The communicators and the public facts of one federated job (DESIGN §6).
///
/// World rank 0 is the server; world rank k ≥ 1 is client k − 1. `clients` holds every client
/// (the server is not a member); `task` holds the clients of this client's task (nil on the
/// server). Sample counts n_k and task ids are the only facts about clients the server learns.
public struct Federation {
    public let world: CountingCommunicator
    public let clients: (any Communicator)?
    public let task: (any Communicator)?
    /// Task id of every client, indexed by client (world rank − 1).
    public let clientTasks: [Int]
    /// Number of training examples n_k of every client.
    public let clientSamples: [Int]
    public let numTasks: Int
    /// Seconds the server spent in aggregation math (inside the collectives below) since reset.
    public let aggregationClock = AggregationClock()

    public var isServer: Bool { world.rank == 0 }
    /// This rank's client index, or nil on the server.
    public var client: Int? { world.rank == 0 ? nil : world.rank - 1 }
    public var clientCount: Int { clientTasks.count }

    /// The public facts of a federation without any communication (offline evaluation).
    public init(offline clientTasks: [Int], numTasks: Int) {
        world = CountingCommunicator(OfflineCommunicator())
        clients = nil
        task = nil
        self.clientTasks = clientTasks
        clientSamples = Array(repeating: 0, count: clientTasks.count)
        self.numTasks = numTasks
    }

    /// Builds the communicators. Collective: every rank calls it with the same `clientTasks`;
    /// each client passes its own sample count, which the server gathers.
    public init(world base: any Communicator, clientTasks: [Int], numTasks: Int, localSamples: Int) throws {
        guard base.size == clientTasks.count + 1 else {
            throw PilotError.invalidArgument("the job has \(base.size) ranks but the scenario has \(clientTasks.count) clients: run with \(clientTasks.count + 1) ranks (rank 0 is the server)")
        }
        world = base as? CountingCommunicator ?? CountingCommunicator(base)
        let myClient = world.rank == 0 ? nil : world.rank - 1
        clients = try world.split(color: myClient == nil ? nil : 0, key: world.rank, name: "clients")
        task = try world.split(color: myClient.map { clientTasks[$0] }, key: world.rank, name: myClient.map { "task[\(clientTasks[$0])]" } ?? "none")
        let counts = try world.allgather([Int64(myClient == nil ? 0 : localSamples)])
        clientSamples = counts.dropFirst().map { Int($0) }
        self.clientTasks = clientTasks
        self.numTasks = numTasks
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
