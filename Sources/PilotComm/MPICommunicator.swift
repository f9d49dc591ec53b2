import CMPI
import PilotCore

/// `Communicator` over a real MPI communicator. Every MPI return code is checked and turned
/// into `PilotError.mpi` with the operation, the world rank and MPI's own error string.
public final class MPICommunicator: Communicator, @unchecked Sendable {
    public let comm: MPI_Comm
    public let rank: Int
    public let size: Int
    public let worldRank: Int
    public let name: String
    private let owned: Bool

    init(comm: MPI_Comm, rank: Int, size: Int, worldRank: Int, name: String, owned: Bool) {
        self.comm = comm
        self.rank = rank
        self.size = size
        self.worldRank = worldRank
        self.name = name
        self.owned = owned
    }

    deinit {
        if owned && MPIRuntime.isInitialized && !MPIRuntime.isFinalized {
            var c: MPI_Comm? = comm
            MPI_Comm_free(&c)
        }
    }

    /// Throws unless `code` is MPI_SUCCESS.
    func check(_ code: Int32, _ operation: @autoclosure () -> String) throws {
        guard code != pilot_MPI_SUCCESS() else { return }
        var buf = [CChar](repeating: 0, count: Int(pilot_MPI_MAX_ERROR_STRING()) + 1)
        var len: Int32 = 0
        MPI_Error_string(code, &buf, &len)
        throw PilotError.mpi(operation: "\(operation()) on \(name)", rank: worldRank, code: code,
                             message: String(cBuffer: buf))
    }

    static func datatype<T: CommElement>(_: T.Type) -> MPI_Datatype? {
        switch T.kind {
        case .float32: return pilot_MPI_FLOAT()
        case .float64: return pilot_MPI_DOUBLE()
        case .int64: return pilot_MPI_INT64_T()
        case .uint8: return pilot_MPI_UINT8_T()
        }
    }

    static func count(_ n: Int, _ op: String) throws -> Int32 {
        guard n <= Int(Int32.max) else {
            throw PilotError.invalidArgument("\(op): \(n) elements exceed MPI's Int32 count; split the buffer")
        }
        return Int32(n)
    }

    public func split(color: Int?, key: Int, name: String) throws -> (any Communicator)? {
        var newComm: MPI_Comm? = nil
        let c = color.map { Int32($0) } ?? pilot_MPI_UNDEFINED()
        if let color, color < 0 { throw PilotError.invalidArgument("split on \(self.name): colour \(color) must be >= 0 or nil") }
        try check(MPI_Comm_split(comm, c, Int32(key), &newComm), "MPI_Comm_split(\(name))")
        guard color != nil, let newComm, newComm != pilot_MPI_COMM_NULL()! else { return nil }
        MPI_Comm_set_errhandler(newComm, pilot_MPI_ERRORS_RETURN())
        var r: Int32 = 0, s: Int32 = 0
        try check(MPI_Comm_rank(newComm, &r), "MPI_Comm_rank(\(name))")
        try check(MPI_Comm_size(newComm, &s), "MPI_Comm_size(\(name))")
        return MPICommunicator(comm: newComm, rank: Int(r), size: Int(s), worldRank: worldRank, name: name, owned: true)
    }

    /// Posts a nonblocking collective (`start` returns its code) and completes it as `IdleWait`
    /// says. Every buffer `start` names must stay valid until this returns.
    func collective(_ operation: @autoclosure () -> String, _ start: (UnsafeMutablePointer<MPI_Request?>) -> Int32) throws {
        var request: MPI_Request? = nil
        try withUnsafeMutablePointer(to: &request) { r in
            try check(start(r), operation())
            try check(IdleWait.complete(r), operation())
        }
    }

    public func barrier() throws {
        try collective("MPI_Ibarrier") { MPI_Ibarrier(comm, $0) }
    }

    public func broadcast<T: CommElement>(_ buffer: UnsafeMutableBufferPointer<T>, root: Int) throws {
        try checkRoot(root, "broadcast")
        let n = try Self.count(buffer.count, "MPI_Bcast")
        if n == 0 { return }
        try collective("MPI_Ibcast(\(buffer.count) \(T.kind))") {
            MPI_Ibcast(buffer.baseAddress, n, Self.datatype(T.self), Int32(root), comm, $0)
        }
    }

    /// Sums of floating-point values: gather at rank 0, reduce in rank order, broadcast
    /// (bitwise reproducible; MPI_Allreduce's tree may change with message size or algorithm).
    /// Max and integer sums are exact in any order and use MPI_Iallreduce directly.
    public func allreduce<T: CommElement>(_ buffer: UnsafeMutableBufferPointer<T>, op: ReduceOp) throws {
        let n = try Self.count(buffer.count, "allreduce")
        if n == 0 { return }
        let exactInAnyOrder = op == .max || T.kind == .int64
        if exactInAnyOrder {
            try collective("MPI_Iallreduce(\(op), \(buffer.count) \(T.kind))") {
                MPI_Iallreduce(pilot_MPI_IN_PLACE(), buffer.baseAddress, n, Self.datatype(T.self),
                               op == .sum ? pilot_MPI_SUM() : pilot_MPI_MAX(), comm, $0)
            }
            return
        }
        let total = try Self.count(buffer.count * size, "allreduce")
        var all = [T](repeating: T.zero, count: rank == 0 ? Int(total) : 0)
        try all.withUnsafeMutableBufferPointer { recv in
            try collective("MPI_Igather for ordered allreduce(\(buffer.count) \(T.kind))") {
                MPI_Igather(buffer.baseAddress, n, Self.datatype(T.self), recv.baseAddress, n, Self.datatype(T.self), 0, comm, $0)
            }
            if rank == 0 {
                let parts = (0..<size).map { UnsafeBufferPointer(rebasing: recv[($0 * Int(n))..<(($0 + 1) * Int(n))]) }
                reduceInRankOrder(parts, op: op, into: buffer)
            }
        }
        try collective("MPI_Ibcast for ordered allreduce") {
            MPI_Ibcast(buffer.baseAddress, n, Self.datatype(T.self), 0, comm, $0)
        }
    }

    /// Every rank's element count, in rank order, on `root` (all ranks when root is nil).
    private func counts(_ mine: Int32, root: Int?, _ operation: String) throws -> [Int32] {
        var counts = [Int32](repeating: 0, count: size)
        var mine = mine
        try withUnsafeMutablePointer(to: &mine) { m in
            try counts.withUnsafeMutableBufferPointer { c in
                if let root {
                    try collective("MPI_Igather(counts) for \(operation)") {
                        MPI_Igather(m, 1, pilot_MPI_INT32(), c.baseAddress, 1, pilot_MPI_INT32(), Int32(root), comm, $0)
                    }
                } else {
                    try collective("MPI_Iallgather(counts) for \(operation)") {
                        MPI_Iallgather(m, 1, pilot_MPI_INT32(), c.baseAddress, 1, pilot_MPI_INT32(), comm, $0)
                    }
                }
            }
        }
        return counts
    }

    public func gatherv<T: CommElement>(_ send: UnsafeBufferPointer<T>, root: Int) throws -> [[T]] {
        try checkRoot(root, "gatherv")
        let n = try Self.count(send.count, "MPI_Gatherv")
        var counts = try self.counts(n, root: root, "gatherv")
        var displs = [Int32](repeating: 0, count: size)
        var total = 0
        if rank == root {
            for r in 0..<size { displs[r] = try Self.count(total, "MPI_Gatherv"); total += Int(counts[r]) }
        }
        var recv = [T](repeating: T.zero, count: total)
        try recv.withUnsafeMutableBufferPointer { rb in
            try counts.withUnsafeMutableBufferPointer { cb in
                try displs.withUnsafeMutableBufferPointer { db in
                    try collective("MPI_Igatherv(\(send.count) \(T.kind))") {
                        MPI_Igatherv(send.baseAddress ?? UnsafePointer(rb.baseAddress), n, Self.datatype(T.self),
                                     rb.baseAddress, cb.baseAddress, db.baseAddress, Self.datatype(T.self), Int32(root), comm, $0)
                    }
                }
            }
        }
        guard rank == root else { return [] }
        return (0..<size).map { Array(recv[Int(displs[$0])..<(Int(displs[$0]) + Int(counts[$0]))]) }
    }

    public func scatterv<T: CommElement>(_ chunks: [[T]], root: Int) throws -> [T] {
        try checkRoot(root, "scatterv")
        if rank == root && chunks.count != size {
            throw PilotError.invalidArgument("scatterv on \(name): root has \(chunks.count) chunks for \(size) ranks")
        }
        var counts = [Int32](repeating: 0, count: size)
        var displs = [Int32](repeating: 0, count: size)
        var flat: [T] = []
        if rank == root {
            var total = 0
            for r in 0..<size {
                counts[r] = try Self.count(chunks[r].count, "MPI_Scatterv")
                displs[r] = try Self.count(total, "MPI_Scatterv")
                total += chunks[r].count
            }
            flat.reserveCapacity(total)
            for c in chunks { flat += c }
        }
        var mine: Int32 = 0
        try counts.withUnsafeMutableBufferPointer { cb in
            try withUnsafeMutablePointer(to: &mine) { m in
                try collective("MPI_Iscatter(counts) for scatterv") {
                    MPI_Iscatter(cb.baseAddress, 1, pilot_MPI_INT32(), m, 1, pilot_MPI_INT32(), Int32(root), comm, $0)
                }
            }
        }
        var recv = [T](repeating: T.zero, count: Int(mine))
        try flat.withUnsafeBufferPointer { sb in
            try recv.withUnsafeMutableBufferPointer { rb in
                try counts.withUnsafeMutableBufferPointer { cb in
                    try displs.withUnsafeMutableBufferPointer { db in
                        try collective("MPI_Iscatterv(\(T.kind))") {
                            MPI_Iscatterv(sb.baseAddress, cb.baseAddress, db.baseAddress, Self.datatype(T.self),
                                          rb.baseAddress, mine, Self.datatype(T.self), Int32(root), comm, $0)
                        }
                    }
                }
            }
        }
        return recv
    }

    public func allgatherv<T: CommElement>(_ send: UnsafeBufferPointer<T>) throws -> [[T]] {
        let n = try Self.count(send.count, "MPI_Allgatherv")
        var counts = try self.counts(n, root: nil, "allgatherv")
        var displs = [Int32](repeating: 0, count: size)
        var total = 0
        for r in 0..<size { displs[r] = try Self.count(total, "MPI_Allgatherv"); total += Int(counts[r]) }
        var recv = [T](repeating: T.zero, count: total)
        try recv.withUnsafeMutableBufferPointer { rb in
            try counts.withUnsafeMutableBufferPointer { cb in
                try displs.withUnsafeMutableBufferPointer { db in
                    try collective("MPI_Iallgatherv(\(send.count) \(T.kind))") {
                        MPI_Iallgatherv(send.baseAddress ?? UnsafePointer(rb.baseAddress), n, Self.datatype(T.self),
                                        rb.baseAddress, cb.baseAddress, db.baseAddress, Self.datatype(T.self), comm, $0)
                    }
                }
            }
        }
        return (0..<size).map { Array(recv[Int(displs[$0])..<(Int(displs[$0]) + Int(counts[$0]))]) }
    }

    public func alltoallv<T: CommElement>(_ chunks: [[T]]) throws -> [[T]] {
        guard chunks.count == size else {
            throw PilotError.invalidArgument("alltoallv on \(name): \(chunks.count) chunks for \(size) ranks")
        }
        var sendCounts = try chunks.map { try Self.count($0.count, "MPI_Alltoallv") }
        var recvCounts = [Int32](repeating: 0, count: size)
        try sendCounts.withUnsafeMutableBufferPointer { sc in
            try recvCounts.withUnsafeMutableBufferPointer { rc in
                try collective("MPI_Ialltoall(counts) for alltoallv") {
                    MPI_Ialltoall(sc.baseAddress, 1, pilot_MPI_INT32(), rc.baseAddress, 1, pilot_MPI_INT32(), comm, $0)
                }
            }
        }
        var sendDispls = [Int32](repeating: 0, count: size), recvDispls = [Int32](repeating: 0, count: size)
        var sendTotal = 0, recvTotal = 0
        for r in 0..<size {
            sendDispls[r] = try Self.count(sendTotal, "MPI_Alltoallv"); sendTotal += Int(sendCounts[r])
            recvDispls[r] = try Self.count(recvTotal, "MPI_Alltoallv"); recvTotal += Int(recvCounts[r])
        }
        var send = [T](); send.reserveCapacity(sendTotal)
        for c in chunks { send.append(contentsOf: c) }
        var recv = [T](repeating: T.zero, count: recvTotal)
        try send.withUnsafeMutableBufferPointer { sb in
            try recv.withUnsafeMutableBufferPointer { rb in
                try sendCounts.withUnsafeMutableBufferPointer { sc in
                    try sendDispls.withUnsafeMutableBufferPointer { sd in
                        try recvCounts.withUnsafeMutableBufferPointer { rc in
                            try recvDispls.withUnsafeMutableBufferPointer { rd in
                                // Blocking, unlike every other collective here (IdleWait): Open MPI 4.1.4's
                                // MPI_Ialltoallv, on a rank that sends and receives nothing (the server in
                                // DistributedATA), left the next nonblocking collective of the communicator
                                // hanging (seen 2026-12-08: rank 0 stuck in the following MPI_Igatherv). A rank
                                // waiting here polls as MPI does (yield_when_idle under scripts/mpirun.sh).
                                try check(MPI_Alltoallv(sb.baseAddress, sc.baseAddress, sd.baseAddress, Self.datatype(T.self),
                                                   rb.baseAddress, rc.baseAddress, rd.baseAddress, Self.datatype(T.self), comm), "MPI_Alltoallv")
                            }
                        }
                    }
                }
            }
        }
        return (0..<size).map { Array(recv[Int(recvDispls[$0])..<(Int(recvDispls[$0]) + Int(recvCounts[$0]))]) }
    }
}
