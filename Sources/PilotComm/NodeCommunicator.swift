#if canImport(Glibc)
import Glibc
#endif
import PilotCore

extension Communicator {
    /// Collective: the ranks of this group that run on the same host (the same kernel, so the same page
    /// cache), ordered by rank; a group of one host's ranks, like `MPI_Comm_split_type(MPI_COMM_TYPE_SHARED)`.
    /// Hosts are told apart by `gethostname`, which every rank of one node shares; it needs nothing of
    /// MPI beyond the collectives, so it also works in-process (one host).
    public func splitByNode(name: String = "node") throws -> any Communicator {
        let host = Array(Self.hostName.utf8)
        let all = try allgatherv(host)
        let color = all.firstIndex(of: host)!
        guard let node = try split(color: color, key: rank, name: name) else {
            throw PilotError.message("\(self.name): splitting by node gave rank \(rank) no group")
        }
        return node
    }

    /// This machine's host name ("" if it cannot be read).
    public static var hostName: String {
        var buf = [CChar](repeating: 0, count: 256)
        guard gethostname(&buf, buf.count - 1) == 0 else { return "" }
        return String(cString: buf)
    }
}
