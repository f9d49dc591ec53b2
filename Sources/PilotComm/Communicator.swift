import PilotCore

/// The collective operations that the federated runtime needs, over a group of ranks.
///
/// Two implementations: `MPICommunicator` (the product) and `InProcessCommunicator` (threads in
/// one process, for unit tests). Strategies and the round loop only see this protocol.
///
/// Contract shared by both implementations:
/// - Every call is collective over the group: all members call it, in the same order.
/// - Floating-point sums are reduced at rank 0 of the group in rank order and broadcast
///   (`reduceInRankOrder`), so results are bitwise reproducible for a given world size and
///   identical between the two implementations.
/// - A failure throws `PilotError`, naming the world rank and the operation. The in-process
///   world turns a failure on one rank into `.aborted` on the others; under MPI the CLI calls
///   `MPI_Abort`, so no rank is left waiting.
public protocol Communicator: AnyObject, Sendable {
    /// Rank within this group, 0..<size.
    var rank: Int { get }
    var size: Int { get }
    /// Rank in the world group; used in error messages.
    var worldRank: Int { get }
    /// A readable name for messages ("world", "task[2]").
    var name: String { get }

    /// Splits the group by `color`; members with the same colour form a new group ordered by
    /// (key, rank). A nil colour (MPI_UNDEFINED) means "not a member" and returns nil.
    func split(color: Int?, key: Int, name: String) throws -> (any Communicator)?
    func barrier() throws
    /// Replaces `buffer` on every rank with root's contents. Counts must agree.
    func broadcast<T: CommElement>(_ buffer: UnsafeMutableBufferPointer<T>, root: Int) throws
    /// Replaces `buffer` on every rank with the element-wise reduction over ranks.
    func allreduce<T: CommElement>(_ buffer: UnsafeMutableBufferPointer<T>, op: ReduceOp) throws
    /// Root receives every rank's buffer (any lengths), indexed by rank; others receive [].
    func gatherv<T: CommElement>(_ send: UnsafeBufferPointer<T>, root: Int) throws -> [[T]]
    /// Rank r receives `chunks[r]` from root; `chunks` is read only on root (size entries).
    func scatterv<T: CommElement>(_ chunks: [[T]], root: Int) throws -> [T]
    /// Every rank receives every rank's buffer (any lengths), indexed by rank.
    func allgatherv<T: CommElement>(_ send: UnsafeBufferPointer<T>) throws -> [[T]]
    /// Rank r receives `chunks[r]` from every rank (size entries on every rank, any lengths); returns
    /// what each rank sent this one, indexed by rank.
    func alltoallv<T: CommElement>(_ chunks: [[T]]) throws -> [[T]]
}

// MARK: - Conveniences built on the primitives

extension Communicator {
    public var isRoot: Bool { rank == 0 }

    public func split(color: Int?, key: Int) throws -> (any Communicator)? {
        try split(color: color, key: key, name: "\(name)/split")
    }

    public func broadcast<T: CommElement>(_ values: inout [T], root: Int) throws {
        try values.withUnsafeMutableBufferPointer { try broadcast($0, root: root) }
    }

    /// Broadcasts an array whose length only root knows.
    public func broadcastSized<T: CommElement>(_ values: [T], root: Int) throws -> [T] {
        var n = [Int64(values.count)]
        try broadcast(&n, root: root)
        var out = rank == root ? values : [T](repeating: T.zero, count: Int(n[0]))
        try broadcast(&out, root: root)
        return out
    }

    public func broadcast(string: String, root: Int) throws -> String {
        String(decoding: try broadcastSized(Array(string.utf8), root: root), as: UTF8.self)
    }

    public func broadcast<T: CommElement>(scalar: T, root: Int) throws -> T {
        var v = [scalar]
        try broadcast(&v, root: root)
        return v[0]
    }

    public func allreduce<T: CommElement>(_ values: inout [T], op: ReduceOp) throws {
        try values.withUnsafeMutableBufferPointer { try allreduce($0, op: op) }
    }

    public func allreduce<T: CommElement>(scalar: T, op: ReduceOp) throws -> T {
        var v = [scalar]
        try allreduce(&v, op: op)
        return v[0]
    }

    public func gatherv<T: CommElement>(_ values: [T], root: Int) throws -> [[T]] {
        try values.withUnsafeBufferPointer { try gatherv($0, root: root) }
    }

    /// Equal-count gather: root receives the concatenation in rank order; others receive [].
    public func gather<T: CommElement>(_ values: [T], root: Int) throws -> [T] {
        let parts = try gatherv(values, root: root)
        if rank == root, let bad = parts.firstIndex(where: { $0.count != values.count }) {
            throw PilotError.invalidArgument("gather on \(name): rank \(bad) sent \(parts[bad].count) elements, root sent \(values.count); use gatherv for unequal counts")
        }
        return parts.flatMap { $0 }
    }

    public func allgatherv<T: CommElement>(_ values: [T]) throws -> [[T]] {
        try values.withUnsafeBufferPointer { try allgatherv($0) }
    }

    /// Equal-count allgather: the concatenation in rank order.
    public func allgather<T: CommElement>(_ values: [T]) throws -> [T] {
        let parts = try allgatherv(values)
        if let bad = parts.firstIndex(where: { $0.count != values.count }) {
            throw PilotError.invalidArgument("allgather on \(name): rank \(bad) sent \(parts[bad].count) elements, this rank sent \(values.count); use allgatherv")
        }
        return parts.flatMap { $0 }
    }

    func checkRoot(_ root: Int, _ op: String) throws {
        guard root >= 0 && root < size else {
            throw PilotError.invalidArgument("\(op) on \(name): root \(root) is outside 0..<\(size)")
        }
    }
}
