import PilotCore

/// Wraps a communicator and counts the bytes this rank sends and receives, for the metrics
/// file. Counts are the payload of each collective as seen from this rank (what an ideal
/// implementation must move), not OpenMPI's internal traffic.
public final class CountingCommunicator: Communicator, @unchecked Sendable {
    public let base: any Communicator
    let counter: ByteCounter
    public var rank: Int { base.rank }
    public var size: Int { base.size }
    public var worldRank: Int { base.worldRank }
    public var name: String { base.name }

    public final class ByteCounter: @unchecked Sendable {
        public var sent: Int64 = 0
        public var received: Int64 = 0
        public init() {}
        public func reset() { sent = 0; received = 0 }
    }

    public init(_ base: any Communicator, counter: ByteCounter = ByteCounter()) {
        self.base = base
        self.counter = counter
    }

    public var bytesSent: Int64 { counter.sent }
    public var bytesReceived: Int64 { counter.received }
    public func resetCounts() { counter.reset() }

    static func bytes<T>(_ n: Int, _: T.Type) -> Int64 { Int64(n * MemoryLayout<T>.stride) }

    public func split(color: Int?, key: Int, name: String) throws -> (any Communicator)? {
        try base.split(color: color, key: key, name: name).map { CountingCommunicator($0, counter: counter) }
    }

    public func barrier() throws { try base.barrier() }

    public func broadcast<T: CommElement>(_ buffer: UnsafeMutableBufferPointer<T>, root: Int) throws {
        try base.broadcast(buffer, root: root)
        let b = Self.bytes(buffer.count, T.self)
        if rank == root { counter.sent += b * Int64(size - 1) } else { counter.received += b }
    }

    public func allreduce<T: CommElement>(_ buffer: UnsafeMutableBufferPointer<T>, op: ReduceOp) throws {
        try base.allreduce(buffer, op: op)
        if size > 1 {
            let b = Self.bytes(buffer.count, T.self)
            counter.sent += b
            counter.received += b
        }
    }

    public func gatherv<T: CommElement>(_ send: UnsafeBufferPointer<T>, root: Int) throws -> [[T]] {
        let out = try base.gatherv(send, root: root)
        if rank == root {
            counter.received += Self.bytes(out.enumerated().filter { $0.offset != root }.map(\.element.count).reduce(0, +), T.self)
        } else {
            counter.sent += Self.bytes(send.count, T.self)
        }
        return out
    }

    public func scatterv<T: CommElement>(_ chunks: [[T]], root: Int) throws -> [T] {
        let out = try base.scatterv(chunks, root: root)
        if rank == root {
            counter.sent += Self.bytes(chunks.enumerated().filter { $0.offset != root }.map(\.element.count).reduce(0, +), T.self)
        } else {
            counter.received += Self.bytes(out.count, T.self)
        }
        return out
    }

    public func allgatherv<T: CommElement>(_ send: UnsafeBufferPointer<T>) throws -> [[T]] {
        let out = try base.allgatherv(send)
        counter.sent += Self.bytes(send.count, T.self)
        counter.received += Self.bytes(out.enumerated().filter { $0.offset != rank }.map(\.element.count).reduce(0, +), T.self)
        return out
    }

    public func alltoallv<T: CommElement>(_ chunks: [[T]]) throws -> [[T]] {
        let out = try base.alltoallv(chunks)
        counter.sent += Self.bytes(chunks.enumerated().filter { $0.offset != rank }.map(\.element.count).reduce(0, +), T.self)
        counter.received += Self.bytes(out.enumerated().filter { $0.offset != rank }.map(\.element.count).reduce(0, +), T.self)
        return out
    }
}
