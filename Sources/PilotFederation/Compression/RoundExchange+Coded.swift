import PilotComm
import PilotCore
import PilotJob
import PilotTensor

/// The exchange's values as an `ExchangeCoder` codes them (`exchange.compress`, `exchange.compress_down`):
/// the coded bytes are what MPI moves, and each side decodes what it receives. Without a coder, or
/// with `none` in a direction, the Float32 values cross as before.
extension RoundExchange {
    /// Clients → server: each rank's values (rank 0: every rank's, decoded), and the clients whose
    /// values are changes against their reference (`ExchangeCoder.absolute`).
    static func gatherValues(_ packed: Packed, _ updates: [ClientUpdate], federation: Federation, headers: [[Int64]],
                             coder: ExchangeCoder?) throws -> (values: [[Float]], changes: Set<Int>) {
        let world = federation.world
        guard let coder, coder.up != .none else { return (try world.gatherv(packed.values, root: 0), []) }
        let bytes = try world.gatherv(coder.encode(updates), root: 0)
        guard federation.isServer else { return ([], []) }
        var values: [[Float]] = [], changes = Set<Int>()
        for r in 0..<world.size {
            let (v, c) = try coder.decode(header: headers[r], bytes: r < bytes.count ? bytes[r] : [])
            values.append(v); changes.formUnion(c)
        }
        return (values, changes)
    }

    /// Server → all: the shared result's values, coded as one block.
    static func broadcastValues(_ shared: Packed, header: [Int64], coder: ExchangeCoder?, world: any Communicator) throws -> [Float] {
        guard let coder, coder.down != .none else { return try world.broadcastSized(shared.values, root: 0) }
        let bytes = try world.broadcastSized(world.rank == 0 ? coder.down.encode(shared.values) : [], root: 0)
        return try coder.down.decode(bytes[...], count: valueCount(header))
    }

    /// Server → clients: each rank's personal results, each client's values coded on their own.
    static func scatterValues(_ chunks: [Packed], header: [Int64], coder: ExchangeCoder?, world: any Communicator) throws -> [Float] {
        guard let coder, coder.down != .none else { return try world.scatterv(chunks.map(\.values), root: 0) }
        let coded = chunks.map { chunk in clientCounts(chunk.header).reduce(into: (at: 0, bytes: [UInt8]())) { acc, n in
            acc.bytes += coder.down.encode(Array(chunk.values[acc.at..<(acc.at + n)])); acc.at += n
        }.bytes }
        let bytes = try world.scatterv(coded, root: 0)
        var out: [Float] = [], at = 0
        for n in clientCounts(header) {
            let size = coder.down.byteCount(n)
            guard at + size <= bytes.count else { throw PilotError.message("exchange: the coded personal results are cut short") }
            out += try coder.down.decode(bytes[at..<(at + size)], count: n)
            at += size
        }
        return out
    }

    static func clientCounts(_ header: [Int64]) -> [Int] {
        let n = header.isEmpty ? 0 : Int(header[0])
        return (0..<n).map { Int(header[5 + 5 * $0]) }
    }

    static func valueCount(_ header: [Int64]) -> Int { clientCounts(header).reduce(0, +) }
}

extension ExchangeCoder {
    /// Rank 0, once the round is aggregated: records what every client receives, as it will decode it
    /// (the clients that sent an accepted update: the shared and their personal result; the others the
    /// shared one), the same bits `ClientHost.apply` records on the clients' ranks.
    func serverDownlink(_ result: inout RoundResult, sent: Set<Int>, clients k: Int) throws {
        let refused = Set(result.rejected.map(\.client))
        let shared = try result.shared.map { try $0.with(values: downlink($0.values).values) }
        for c in 0..<k {
            if sent.contains(c) && !refused.contains(c) {
                try received(client: c, shared: shared, personal: try result.personal[c].map { try $0.with(values: downlink($0.values).values) })
            } else if shared != nil {
                try received(client: c, shared: shared, personal: nil)
            }
        }
    }
}
