import PilotCore
import PilotTensor

/// What crosses the network when `exchange.compress` or `exchange.compress_down` is set
/// (docs/compression.md). One per rank, kept across rounds:
///
///  - **up** (client → server): each client codes the *change* of its update against its reference,
///    the values it last received from the server under the same names, which the server also holds
///    (`references`, one per client on rank 0, each client's own on its rank: both sides record what
///    every client received, with the same bits). Its first update, with no reference, is coded as
///    values (fp16, bf16, int8) or sent dense (top-k). An update that is itself a change (FedAdam's
///    x_k − x) is coded as it is. Top-k keeps an error-feedback residual per client: what it did not
///    send is added to its next change. The server decodes every update before `ServerStep`.
///  - **down** (server → clients): the shared and personal results, coded as values; the server keeps
///    what the clients decode as their references.
///
/// A client's coded update is one mode byte (`Mode`) and its codec's bytes. Checkpoints keep the
/// references and residuals (`ExchangeCoder+State.swift`), so a resume continues with the same bits.
final class ExchangeCoder {
    enum Mode: UInt8 { case dense = 0, change = 1, values = 2 }

    let up: UpdateCodec
    let down: UpdateCodec
    let fraction: Double
    /// The updates are changes already (FedAdam): coded as they are, never against a reference.
    let updatesAreChanges: Bool
    /// Per client: what it last received from the server, by name (rank 0: every client's).
    var references: [Int: NamedTensors] = [:]
    /// Top-k error feedback, per client of this rank: the part of its changes not sent yet, by name.
    var residuals: [Int: NamedTensors] = [:]
    /// This round's new residuals, kept only if the server accepts the update (`settle`).
    var pending: [Int: NamedTensors] = [:]
    /// The bytes each client of this rank sent and received this round.
    var sentBytes: [Int: Int] = [:]
    var receivedBytes: [Int: Int] = [:]

    init(up: UpdateCodec, down: UpdateCodec, fraction: Double, updatesAreChanges: Bool) {
        self.up = up; self.down = down; self.fraction = fraction; self.updatesAreChanges = updatesAreChanges
    }

    /// The reference of `client` for tensors laid out as `like`, when it holds every one of them.
    func reference(_ client: Int, like t: NamedTensors) -> [Float]? {
        guard !updatesAreChanges, let ref = references[client] else { return nil }
        var out: [Float] = []
        out.reserveCapacity(t.values.count)
        for (i, name) in t.names.enumerated() {
            guard let v = ref[name], v.count == t.counts[i] else { return nil }
            out += v
        }
        return out
    }

    // MARK: up

    /// Client side: every update of this rank coded, concatenated in the order given.
    func encode(_ updates: [ClientUpdate]) -> [UInt8] {
        var out: [UInt8] = []
        pending = [:]; sentBytes = [:]
        for u in updates {
            let blob = encode(u)
            sentBytes[u.client] = blob.count
            out += blob
        }
        return out
    }

    func encode(_ u: ClientUpdate) -> [UInt8] {
        let x = u.tensors.values
        let ref = reference(u.client, like: u.tensors)
        if ref == nil && !updatesAreChanges && up == .topk {
            return [Mode.dense.rawValue] + UpdateCodec.none.encode(x)
        }
        var v = ref.map { r in zip(x, r).map { $0 - $1 } } ?? x
        if up == .topk {
            // error feedback: what earlier rounds left unsent joins this change
            if let r = residuals[u.client] {
                for (i, name) in u.tensors.names.enumerated() {
                    guard let old = r[name], old.count == u.tensors.counts[i] else { continue }
                    let range = u.tensors.range(of: name)!
                    for (j, e) in zip(range, old) { v[j] += e }
                }
            }
            let kept = Set(TopK.select(v, keep: UpdateCodec.topkCount(v.count, fraction: fraction)))
            var left = v
            for i in kept { left[i] = 0 }
            pending[u.client] = try? u.tensors.with(values: left)
        }
        return [(ref == nil ? Mode.values : Mode.change).rawValue] + up.encode(v, fraction: fraction)
    }

    /// Server side: the decoded values of one rank's coded updates, whose header (`RoundExchange.Packed`)
    /// names each client and its value count, concatenated in that order; `changes` are the clients
    /// whose values are changes against their reference (`absolute` adds it once the layout is known).
    func decode(header: [Int64], bytes: [UInt8]) throws -> (values: [Float], changes: Set<Int>) {
        let n = header.isEmpty ? 0 : Int(header[0])
        var out: [Float] = [], changes = Set<Int>(), at = 0
        for i in 0..<n {
            let client = Int(header[1 + 5 * i]), count = Int(header[5 + 5 * i])
            guard at < bytes.count, let mode = Mode(rawValue: bytes[at]) else {
                throw PilotError.message("exchange: client \(client)'s coded update has no valid mode byte")
            }
            let size = 1 + (mode == .dense ? UpdateCodec.none : up).byteCount(count, fraction: fraction)
            guard at + size <= bytes.count else { throw PilotError.message("exchange: client \(client)'s coded update is cut short (\(bytes.count - at) of \(size) bytes)") }
            out += try (mode == .dense ? UpdateCodec.none : up).decode(bytes[(at + 1)..<(at + size)], count: count, fraction: fraction)
            if mode == .change { changes.insert(client) }
            at += size
        }
        guard at == bytes.count else { throw PilotError.message("exchange: \(bytes.count - at) bytes left after the coded updates") }
        return (out, changes)
    }

    /// Server side: a decoded change of `client` plus its reference.
    func absolute(_ change: NamedTensors, client: Int) throws -> NamedTensors {
        guard let ref = reference(client, like: change) else {
            throw PilotError.message("exchange: client \(client) sent a change against a reference the server does not hold (the two sides' references differ: a bug, or a checkpoint from another run)")
        }
        return try change.with(values: zip(change.values, ref).map { $0 + $1 })
    }

    /// Client side, after the exchange: a client's new residual counts only if the server accepted its update.
    func settle(client: Int, accepted: Bool) {
        if accepted, let r = pending[client] { residuals[client] = r }
        pending[client] = nil
    }

    // MARK: down

    /// The values as the clients decode them, and their coded bytes (`down`; none: the values, 4 bytes each).
    func downlink(_ values: [Float]) throws -> (values: [Float], bytes: [UInt8]) {
        let bytes = down.encode(values)
        return (down == .none ? values : try down.decode(bytes[...], count: values.count), bytes)
    }

    /// What a client records after the exchange: the shared result, then its personal one.
    func received(client: Int, shared: NamedTensors?, personal: NamedTensors?) throws {
        var ref = references[client] ?? NamedTensors()
        if let shared { ref = try ref.merging(shared) }
        if let personal { ref = try ref.merging(personal) }
        references[client] = ref
    }
}
