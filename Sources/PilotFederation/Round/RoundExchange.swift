import PilotComm
import PilotCore
import PilotJob
import PilotTensor

/// The one transport of a round (docs/design.md §6): every client update goes to the server, the server
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

    /// What every rank gets back from the exchange.
    public struct Result: Sendable {
        /// The result every client receives (a global model, Pilot's task adapters), on every rank.
        public var shared: NamedTensors?
        /// This rank's clients' personal results (Pilot's ATA-mixed LoRA), by client.
        public var personal: [Int: NamedTensors]
        /// The updates the server refused, on every rank.
        public var rejected: [Rejection]
        /// The server's new state (rank 0 only).
        public var serverState: NamedTensors?
        /// What the aggregation logged, e.g. a robust rule's fallback (rank 0 only; `RoundResult.notes`).
        public var notes: [String] = []
    }

    /// Collective over `federation.world`. `updates` are this rank's (empty on the server); the
    /// server calls `aggregate` on every update of the round, in client order. Returns the
    /// shared result (every rank) and this rank's personal results by client.
    public static func run(_ updates: [ClientUpdate], federation: Federation,
                           aggregate: ([ClientUpdate]) throws -> RoundResult) throws -> Result {
        try run(updates, federation: federation, coder: nil, aggregate: aggregate)
    }

    /// With a `coder` (`exchange.compress*`), the values cross as its coded bytes (docs/compression.md).
    static func run(_ updates: [ClientUpdate], federation: Federation, coder: ExchangeCoder?,
                    aggregate: ([ClientUpdate]) throws -> RoundResult) throws -> Result {
        let world = federation.world
        let packed = Packed(updates.map { ($0.client, $0.examples, $0.tensors) }, losses: updates.map { $0.metrics["loss_total"] ?? 0 })
        let headers = try world.gatherv(packed.header, root: 0)
        let layouts = try world.gatherv(packed.layouts, root: 0)
        let (values, changes) = try gatherValues(packed, updates, federation: federation, headers: headers, coder: coder)

        var result = RoundResult()
        var personalChunks: [Packed] = []
        var failure = ""
        if federation.isServer {
            do {
                var all: [ClientUpdate] = []
                for r in 1..<world.size {
                    for (client, examples, loss, tensors) in try Packed(header: headers[r], layouts: layouts[r], values: values[r]).unpack() {
                        let t = changes.contains(client) ? try coder!.absolute(tensors, client: client) : tensors
                        all.append(ClientUpdate(client: client, examples: examples, tensors: t, metrics: ["loss_total": loss]))
                    }
                }
                all.sort { $0.client < $1.client }
                result = try federation.aggregationClock.time { try aggregate(all) }
                let wanted = Set(all.map(\.client))
                if let stray = result.personal.keys.first(where: { !wanted.contains($0) }) {
                    throw PilotError.message("aggregation returned a result for client \(stray), which sent no update this round")
                }
                if let coder { try coder.serverDownlink(&result, sent: wanted, clients: federation.clientCount) }
                personalChunks = (0..<world.size).map { r in
                    let mine = federation.placement.clients(onRank: r)
                    return Packed(result.personal.keys.sorted().filter { mine.contains($0) }.map { ($0, 0, result.personal[$0]!) })
                }
            } catch { failure = "\(error)" }
        }
        // A failed aggregation (every update rejected, say) reaches every rank, which all throw it: no
        // rank is left waiting in a collective, and nothing of the round is committed.
        let status = try world.broadcast(string: failure, root: 0)
        if !status.isEmpty {
            if federation.isServer { throw PilotError.message(status) }
            throw PilotError.aborted(operation: "aggregation", rank: world.rank, cause: "rank 0 reports why")
        }
        let rejectedText = try world.broadcast(string: result.rejected.map { "\($0.client)\t\($0.reason)" }.joined(separator: "\n"), root: 0)
        let rejected = rejectedText.split(separator: "\n").compactMap { line -> Rejection? in
            let parts = line.split(separator: "\t", maxSplits: 1)
            guard parts.count == 2, let c = Int(parts[0]) else { return nil }
            return Rejection(client: c, reason: String(parts[1]))
        }
        // The shared result: one layout and one buffer for everyone.
        let shared = result.shared.map { Packed([(-1, 0, $0)]) } ?? Packed([])
        let sharedHeader = try world.broadcastSized(shared.header, root: 0)
        let sharedLayouts = try world.broadcastSized(shared.layouts, root: 0)
        let sharedValues = try broadcastValues(shared, header: sharedHeader, coder: coder, world: world)
        let sharedOut = try Packed(header: sharedHeader, layouts: sharedLayouts, values: sharedValues).unpack().first?.3

        let myHeader = try world.scatterv(personalChunks.map(\.header), root: 0)
        let myLayouts = try world.scatterv(personalChunks.map(\.layouts), root: 0)
        let myValues = try scatterValues(personalChunks, header: myHeader, coder: coder, world: world)
        var personal: [Int: NamedTensors] = [:]
        if !federation.isServer {
            for (client, _, _, tensors) in try Packed(header: myHeader, layouts: myLayouts, values: myValues).unpack() { personal[client] = tensors }
        }
        return Result(shared: sharedOut, personal: personal, rejected: rejected, serverState: federation.isServer ? result.serverState : nil,
                      notes: federation.isServer ? result.notes : [])
    }

    /// Named tensors of several clients in three flat buffers: a header [n, (client, examples,
    /// training loss as its bit pattern, layout index, value count)×n], the distinct layouts as text
    /// ("name d0,d1,…" lines, a tensor's name and shape; layouts separated by an empty line; clients
    /// that share a layout send it once) and the values.
    struct Packed {
        var header: [Int64] = [0]
        var layouts: [UInt8] = []
        var values: [Float] = []

        init(_ items: [(client: Int, examples: Int, tensors: NamedTensors)], losses: [Double]? = nil) {
            var texts: [String] = []
            var index: [String: Int] = [:]
            header = [Int64(items.count)]
            for (j, (client, examples, t)) in items.enumerated() {
                let text = zip(t.names, t.shapes).map { "\($0) " + $1.map(String.init).joined(separator: ",") }.joined(separator: "\n")
                let i: Int
                if let known = index[text] { i = known } else { i = texts.count; index[text] = i; texts.append(text) }
                header += [Int64(client), Int64(examples), Int64(bitPattern: (losses?[j] ?? 0).bitPattern), Int64(i), Int64(t.values.count)]
                values += t.values
            }
            layouts = Array(texts.joined(separator: "\n\n").utf8)
        }

        init(header: [Int64], layouts: [UInt8], values: [Float]) {
            self.header = header.isEmpty ? [0] : header; self.layouts = layouts; self.values = values
        }

        func unpack() throws -> [(Int, Int, Double, NamedTensors)] {
            let n = Int(header[0])
            guard header.count == 1 + 5 * n else { throw PilotError.message("exchange: a header of \(header.count) values for \(n) clients") }
            let texts = n == 0 ? [] : String(decoding: layouts, as: UTF8.self).components(separatedBy: "\n\n")
            let parsed: [([String], [[Int]])] = try texts.map { text in
                var names: [String] = [], shapes: [[Int]] = []
                for line in text.split(separator: "\n") {
                    guard let space = line.lastIndex(of: " ") else { throw PilotError.message("exchange: a layout line without a shape: '\(line)'") }
                    let dims = line[line.index(after: space)...].split(separator: ",").map { Int($0) ?? -1 }
                    names.append(String(line[..<space])); shapes.append(dims)
                }
                return (names, shapes)
            }
            var out: [(Int, Int, Double, NamedTensors)] = []
            var offset = 0
            for i in 0..<n {
                let h = 1 + 5 * i
                let client = Int(header[h]), examples = Int(header[h + 1]), loss = Double(bitPattern: UInt64(bitPattern: header[h + 2]))
                let layout = Int(header[h + 3]), count = Int(header[h + 4])
                guard layout >= 0 && layout < parsed.count, offset + count <= values.count else {
                    throw PilotError.message("exchange: client \(client)'s entry is out of range (layout \(layout) of \(parsed.count), values \(offset + count) of \(values.count))")
                }
                let (names, shapes) = parsed[layout]
                out.append((client, examples, loss, try NamedTensors(names: names, shapes: shapes, values: Array(values[offset..<(offset + count)]))))
                offset += count
            }
            return out
        }
    }
}
