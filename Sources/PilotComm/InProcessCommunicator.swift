import Foundation
import PilotCore

/// A group of threads in one process that behaves like an MPI communicator, for unit tests of
/// strategies and the round loop without mpirun. Collectives are built on one primitive,
/// `exchange`: every member deposits a value, the last one to arrive publishes all of them, and
/// each member computes its result from the published list. Reductions use `reduceInRankOrder`,
/// exactly as `MPICommunicator` does, so both give the same bits.
///
/// Members must make the same collective calls in the same order; a mismatch (one rank in
/// `allreduce`, another in `broadcast`) throws on every member instead of silently mixing data.
public final class InProcessCommunicator: Communicator, @unchecked Sendable {
    let group: Group
    public let rank: Int
    public var size: Int { group.size }
    public let worldRank: Int
    public var name: String { group.name }

    init(group: Group, rank: Int, worldRank: Int) {
        self.group = group
        self.rank = rank
        self.worldRank = worldRank
    }

    /// Runs `body` on `size` threads, one per rank, and returns their results in rank order.
    /// If any rank throws, the others are released from their collectives with `.aborted`, and
    /// the first original error is rethrown.
    public static func run<R: Sendable>(size: Int, _ body: @escaping @Sendable (InProcessCommunicator) throws -> R) throws -> [R] {
        precondition(size >= 1, "InProcessCommunicator.run needs at least one rank")
        let world = World()
        let group = Group(world: world, members: Array(0..<size), name: "world")
        let results = ResultBox<R>(count: size)
        let done = DispatchGroup()
        for r in 0..<size {
            done.enter()
            let thread = Thread {
                defer { done.leave() }
                let comm = InProcessCommunicator(group: group, rank: r, worldRank: r)
                do {
                    results.set(r, .success(try body(comm)))
                    world.finish(rank: r)
                } catch {
                    results.set(r, .failure(error))
                    world.abort(rank: r, cause: "\(error)")
                }
            }
            thread.stackSize = 8 << 20
            thread.start()
        }
        done.wait()
        return try results.collect()
    }

    // MARK: Collectives

    public func split(color: Int?, key: Int, name: String) throws -> (any Communicator)? {
        if let color, color < 0 { throw PilotError.invalidArgument("split on \(self.name): colour \(color) must be >= 0 or nil") }
        let (all, seq) = try group.exchange(rank: rank, worldRank: worldRank, op: "split", value: SplitRequest(color: color, key: key))
        guard let color else { return nil }
        let members = all.enumerated()
            .compactMap { r, v -> (key: Int, rank: Int)? in
                let req = v as! SplitRequest
                return req.color == color ? (req.key, r) : nil
            }
            .sorted { ($0.key, $0.rank) < ($1.key, $1.rank) }
        let newRank = members.firstIndex { $0.rank == rank }!
        let sub = group.world.subgroup(id: "\(group.id)/\(seq)/\(color)", members: members.map { group.members[$0.rank] }, name: name)
        return InProcessCommunicator(group: sub, rank: newRank, worldRank: worldRank)
    }

    public func barrier() throws {
        _ = try group.exchange(rank: rank, worldRank: worldRank, op: "barrier", value: 0)
    }

    public func broadcast<T: CommElement>(_ buffer: UnsafeMutableBufferPointer<T>, root: Int) throws {
        try checkRoot(root, "broadcast")
        let (all, _) = try group.exchange(rank: rank, worldRank: worldRank, op: "broadcast(\(T.kind))",
                                          value: rank == root ? Array(buffer) : [T]())
        let src = all[root] as! [T]
        guard src.count == buffer.count else {
            throw PilotError.invalidArgument("broadcast on \(name): rank \(rank) has \(buffer.count) elements, root has \(src.count)")
        }
        for i in 0..<buffer.count { buffer[i] = src[i] }
    }

    public func allreduce<T: CommElement>(_ buffer: UnsafeMutableBufferPointer<T>, op: ReduceOp) throws {
        let (all, _) = try group.exchange(rank: rank, worldRank: worldRank, op: "allreduce(\(op), \(T.kind))", value: Array(buffer))
        let parts = all.map { $0 as! [T] }
        if let bad = parts.firstIndex(where: { $0.count != buffer.count }) {
            throw PilotError.invalidArgument("allreduce on \(name): rank \(bad) has \(parts[bad].count) elements, rank \(rank) has \(buffer.count)")
        }
        var pointers: [UnsafeBufferPointer<T>] = []
        func reduce(_ i: Int) {
            if i == parts.count { reduceInRankOrder(pointers, op: op, into: buffer); return }
            parts[i].withUnsafeBufferPointer { p in pointers.append(p); reduce(i + 1) }
        }
        reduce(0)
    }

    public func gatherv<T: CommElement>(_ send: UnsafeBufferPointer<T>, root: Int) throws -> [[T]] {
        try checkRoot(root, "gatherv")
        let (all, _) = try group.exchange(rank: rank, worldRank: worldRank, op: "gatherv(\(T.kind))", value: Array(send))
        return rank == root ? all.map { $0 as! [T] } : []
    }

    public func scatterv<T: CommElement>(_ chunks: [[T]], root: Int) throws -> [T] {
        try checkRoot(root, "scatterv")
        if rank == root && chunks.count != size {
            // Still take part in the exchange so that the other ranks are not left waiting.
            _ = try? group.exchange(rank: rank, worldRank: worldRank, op: "scatterv(\(T.kind))", value: [[T]]())
            throw PilotError.invalidArgument("scatterv on \(name): root has \(chunks.count) chunks for \(size) ranks")
        }
        let (all, _) = try group.exchange(rank: rank, worldRank: worldRank, op: "scatterv(\(T.kind))",
                                          value: rank == root ? chunks : [[T]]())
        let src = all[root] as! [[T]]
        guard src.count == size else {
            throw PilotError.aborted(operation: "scatterv on \(name)", rank: worldRank, cause: "root supplied \(src.count) chunks for \(size) ranks")
        }
        return src[rank]
    }

    public func allgatherv<T: CommElement>(_ send: UnsafeBufferPointer<T>) throws -> [[T]] {
        let (all, _) = try group.exchange(rank: rank, worldRank: worldRank, op: "allgatherv(\(T.kind))", value: Array(send))
        return all.map { $0 as! [T] }
    }

    public func alltoallv<T: CommElement>(_ chunks: [[T]]) throws -> [[T]] {
        let (all, _) = try group.exchange(rank: rank, worldRank: worldRank, op: "alltoallv(\(T.kind))", value: chunks)
        let parts = all.map { $0 as! [[T]] }
        if let bad = parts.firstIndex(where: { $0.count != size }) {
            throw PilotError.invalidArgument("alltoallv on \(name): rank \(bad) has \(parts[bad].count) chunks for \(size) ranks")
        }
        return parts.map { $0[rank] }
    }
}

struct SplitRequest { let color: Int?; let key: Int }

/// State shared by every group created from one `run`: the abort flag and the registry of
/// subgroups (so that all members of a split find the same group object).
final class World: @unchecked Sendable {
    let lock = NSCondition()
    var abortedBy: (rank: Int, cause: String)?
    var groups: [String: Group] = [:]
    var finished: Set<Int> = []

    /// A rank whose body returned can no longer join collectives; members waiting for it fail
    /// (under MPI they would hang) with a message that names it.
    func finish(rank: Int) {
        lock.lock()
        finished.insert(rank)
        lock.broadcast()
        lock.unlock()
    }

    func abort(rank: Int, cause: String) {
        lock.lock()
        if abortedBy == nil { abortedBy = (rank, cause) }
        lock.broadcast()
        lock.unlock()
    }

    func subgroup(id: String, members: [Int], name: String) -> Group {
        lock.lock(); defer { lock.unlock() }
        if let g = groups[id] { return g }
        let g = Group(world: self, members: members, name: name, id: id)
        groups[id] = g
        return g
    }
}

/// One communicator's rendezvous: a generation-counted exchange of one value per member.
final class Group: @unchecked Sendable {
    let world: World
    let size: Int
    /// World ranks of the members, indexed by group rank.
    let members: [Int]
    let name: String
    let id: String
    private var slots: [(op: String, value: Any)?]
    private var published: [(op: String, value: Any)] = []
    private var arrived = 0
    private var generation = 0

    init(world: World, members: [Int], name: String, id: String = "w") {
        self.world = world
        self.size = members.count
        self.members = members
        self.name = name
        self.id = id
        slots = Array(repeating: nil, count: size)
    }

    /// Deposits `value`, waits for every member, and returns all values in rank order plus the
    /// sequence number of this collective (used to name split subgroups deterministically).
    func exchange(rank: Int, worldRank: Int, op: String, value: Any) throws -> ([Any], Int) {
        let lock = world.lock
        lock.lock(); defer { lock.unlock() }
        if let a = world.abortedBy {
            throw PilotError.aborted(operation: "\(op) on \(name)", rank: worldRank, cause: "rank \(a.rank): \(a.cause)")
        }
        let myGeneration = generation
        slots[rank] = (op, value)
        arrived += 1
        if arrived == size {
            published = slots.map { $0! }
            slots = Array(repeating: nil, count: size)
            arrived = 0
            generation += 1
            lock.broadcast()
        } else {
            while generation == myGeneration {
                if let a = world.abortedBy {
                    throw PilotError.aborted(operation: "\(op) on \(name)", rank: worldRank, cause: "rank \(a.rank): \(a.cause)")
                }
                if let gone = members.first(where: { world.finished.contains($0) }) {
                    throw PilotError.aborted(operation: "\(op) on \(name)", rank: worldRank,
                                             cause: "rank \(gone) returned without joining this collective (calls must be collective)")
                }
                lock.wait()
            }
        }
        if let mismatch = published.firstIndex(where: { $0.op != op }) {
            throw PilotError.invalidArgument("collective mismatch on \(name): rank \(rank) called \(op) but rank \(mismatch) called \(published[mismatch].op)")
        }
        return (published.map { $0.value }, myGeneration)
    }
}

final class ResultBox<R>: @unchecked Sendable {
    private let lock = NSLock()
    private var results: [Result<R, Error>?]
    init(count: Int) { results = Array(repeating: nil, count: count) }
    func set(_ i: Int, _ r: Result<R, Error>) { lock.lock(); results[i] = r; lock.unlock() }
    /// Returns all results, or throws the first error that was not a consequence of another rank's failure.
    func collect() throws -> [R] {
        lock.lock(); defer { lock.unlock() }
        let errors = results.compactMap { r -> Error? in if case .failure(let e)? = r { return e }; return nil }
        if let original = errors.first(where: { if case PilotError.aborted = $0 { return false }; return true }) ?? errors.first {
            throw original
        }
        return results.map { try! $0!.get() }
    }
}
