import PilotComm
import PilotCore

/// The one transport of a round (DESIGN §6): every client update goes to the server, the server
/// runs the strategy's pure `aggregate` on all of them in client order, and every client gets its
/// result back. Three collectives each way, whatever the strategy:
///
///     clients → server   gatherv of each rank's updates (header, layouts, values)
///     server → all       broadcast of the shared result (every rank, names and values)
///     server → clients   scatterv of each rank's personal results
///
/// Because the server folds the updates in client order, the result does not depend on how many
/// clients each rank hosts or on MPI's reduction order: K clients on 2 ranks and on K + 1 ranks
/// give the same bits.
public enum RoundExchange {
    /// Bytes of the tensors one client sent and received in the exchange (float32 payload; the
    /// headers and names, a few hundred bytes, are not counted).
    public struct ClientBytes: Sendable { public var sent = 0.0, received = 0.0 }

    /// Collective over `federation.world`. `updates` are this rank's (empty on the server); the
    /// server calls `aggregate` on every update of the round, in client order. Returns the
    /// shared result (every rank) and this rank's personal results by client.
    public static func run(_ updates: [ClientUpdate], federation: Federation,
                           aggregate: ([ClientUpdate]) throws -> RoundResult) throws -> (shared: NamedTensors?, personal: [Int: NamedTensors], serverState: TensorDict?) {
        let world = federation.world
        let packed = Packed(updates.map { ($0.client, $0.examples, $0.tensors) })
        let headers = try world.gatherv(packed.header, root: 0)
        let layouts = try world.gatherv(packed.layouts, root: 0)
        let values = try world.gatherv(packed.values, root: 0)

        var result = RoundResult()
        var personalChunks: [Packed] = []
        if federation.isServer {
            var all: [ClientUpdate] = []
            for r in 1..<world.size {
                for (client, examples, tensors) in try Packed(header: headers[r], layouts: layouts[r], values: values[r]).unpack() {
                    all.append(ClientUpdate(client: client, examples: examples, tensors: tensors))
                }
            }
            all.sort { $0.client < $1.client }
            result = try federation.aggregationClock.time { try aggregate(all) }
            let wanted = Set(all.map(\.client))
            if let stray = result.personal.keys.first(where: { !wanted.contains($0) }) {
                throw PilotError.message("aggregation returned a result for client \(stray), which sent no update this round")
            }
            personalChunks = (0..<world.size).map { r in
                let mine = federation.placement.clients(onRank: r)
                return Packed(result.personal.keys.sorted().filter { mine.contains($0) }.map { ($0, 0, result.personal[$0]!) })
            }
        }
        // The shared result: one layout and one buffer for everyone.
        let shared = result.shared.map { Packed([(-1, 0, $0)]) } ?? Packed([])
        let sharedHeader = try world.broadcastSized(shared.header, root: 0)
        let sharedLayouts = try world.broadcastSized(shared.layouts, root: 0)
        let sharedValues = try world.broadcastSized(shared.values, root: 0)
        let sharedOut = try Packed(header: sharedHeader, layouts: sharedLayouts, values: sharedValues).unpack().first?.2

        let myHeader = try world.scatterv(personalChunks.map(\.header), root: 0)
        let myLayouts = try world.scatterv(personalChunks.map(\.layouts), root: 0)
        let myValues = try world.scatterv(personalChunks.map(\.values), root: 0)
        var personal: [Int: NamedTensors] = [:]
        if !federation.isServer {
            for (client, _, tensors) in try Packed(header: myHeader, layouts: myLayouts, values: myValues).unpack() { personal[client] = tensors }
        }
        return (sharedOut, personal, federation.isServer ? result.serverState : nil)
    }

    /// Named tensors of several clients in three flat buffers: a header [n, (client, examples,
    /// layout index, value count)×n], the distinct layouts as text ("name count" lines, layouts
    /// separated by an empty line; clients that share a layout send it once) and the values.
    struct Packed {
        var header: [Int64] = [0]
        var layouts: [UInt8] = []
        var values: [Float] = []

        init(_ items: [(client: Int, examples: Int, tensors: NamedTensors)]) {
            var texts: [String] = []
            var index: [String: Int] = [:]
            header = [Int64(items.count)]
            for (client, examples, t) in items {
                let text = zip(t.names, t.counts).map { "\($0) \($1)" }.joined(separator: "\n")
                let i: Int
                if let known = index[text] { i = known } else { i = texts.count; index[text] = i; texts.append(text) }
                header += [Int64(client), Int64(examples), Int64(i), Int64(t.values.count)]
                values += t.values
            }
            layouts = Array(texts.joined(separator: "\n\n").utf8)
        }

        init(header: [Int64], layouts: [UInt8], values: [Float]) {
            self.header = header.isEmpty ? [0] : header; self.layouts = layouts; self.values = values
        }

        func unpack() throws -> [(Int, Int, NamedTensors)] {
            let n = Int(header[0])
            guard header.count == 1 + 4 * n else { throw PilotError.message("exchange: a header of \(header.count) values for \(n) clients") }
            let texts = n == 0 ? [] : String(decoding: layouts, as: UTF8.self).components(separatedBy: "\n\n")
            let parsed: [([String], [Int])] = texts.map { text in
                var names: [String] = [], counts: [Int] = []
                for line in text.split(separator: "\n") {
                    let parts = line.split(separator: " ")
                    names.append(String(parts[0])); counts.append(Int(parts[1]) ?? -1)
                }
                return (names, counts)
            }
            var out: [(Int, Int, NamedTensors)] = []
            var offset = 0
            for i in 0..<n {
                let client = Int(header[1 + 4 * i]), examples = Int(header[2 + 4 * i]), layout = Int(header[3 + 4 * i]), count = Int(header[4 + 4 * i])
                guard layout >= 0 && layout < parsed.count, offset + count <= values.count else {
                    throw PilotError.message("exchange: client \(client)'s entry is out of range (layout \(layout) of \(parsed.count), values \(offset + count) of \(values.count))")
                }
                let (names, counts) = parsed[layout]
                out.append((client, examples, try NamedTensors(names: names, counts: counts, values: Array(values[offset..<(offset + count)]))))
                offset += count
            }
            return out
        }
    }
}
