import PilotComm
import PilotCore
import PilotJob
import PilotTensor

/// A round's secure aggregation (`secure.aggregation`), or its unmasked fixed-point reference
/// (`secure.fixed_point`), around the one transport (`RoundExchange`), which it leaves unchanged:
///
///  1. each client checks its own update (n_k > 0, finite loss and values): once the masks are agreed
///     the server can drop no update, or the masks would not cancel; with DP it adds its own noise
///     N(0, (σ·C)²), the very draw the server would add (`ClientPrivacy.noised`, same seed);
///  2. masked mode: each participant makes a Curve25519 key pair; rank 0 gathers (client, group, w_k,
///     public key) from every rank and broadcasts the list (the server relays the keys);
///  3. each client encodes its summed tensors as fixed point times its share w_k / W of its group
///     (`FixedPoint`), adds its pairwise masks (`PairwiseMasks`), and sends the UInt32 words as the
///     bit patterns of the update's floats; its other tensors (Pilot's LoRA) go as they are;
///  4. the server (`server`) adds each group's words mod 2³², decodes the sum — the masks cancel —
///     and calls the strategy's `aggregate(round:means:clear:…)`.
///
/// The masked words exist only in transit: nothing written (checkpoints, metrics.h5) holds them, and
/// the sums, hence every output, do not depend on the random keys.
public final class SecureRound {
    let mode: SecureMode
    let strategy: any SecureAveraging
    let federation: Federation
    let dp: DPSettings?
    let seed: UInt64
    let minimumUpdates: Int

    public init(mode: SecureMode, strategy: any SecureAveraging, federation: Federation, dp: DPSettings?, seed: UInt64, minimumUpdates: Int) {
        self.mode = mode; self.strategy = strategy; self.federation = federation; self.dp = dp; self.seed = seed
        self.minimumUpdates = max(1, minimumUpdates)
    }

    var roster: Roster { federation.roster }

    /// Collective (every rank): this rank's updates, encoded and masked for the exchange. Clients that
    /// refuse their own update join `training.rejections` and send nothing. Returns the updates and
    /// the number of values the whole federation clipped to ±`FixedPoint.clipBound` (every rank).
    func prepare(round: Int, training: inout ClientHost.Training) throws -> (updates: [ClientUpdate], clipped: Int) {
        let prepared = try prepare(round: round, updates: training.updates)
        for r in prepared.rejections { training.outcomes[r.client] = nil }
        training.rejections += prepared.rejections
        return (prepared.updates, prepared.clipped)
    }

    /// `prepare` on this rank's updates (tests): also returns the clients that refused their own.
    public func prepare(round: Int, updates: [ClientUpdate]) throws -> (updates: [ClientUpdate], rejections: [Rejection], clipped: Int) {
        var ready: [ClientUpdate] = [], rejections: [Rejection] = []
        for var u in updates {
            if let reason = Self.selfCheck(u) {
                rejections.append(Rejection(client: u.client, reason: reason + " (refused by the client before secure aggregation)"))
                continue
            }
            if let dp {
                u.tensors.values = ClientPrivacy.noised(u.tensors.values, std: dp.noiseMultiplier * dp.clip, seed: seed, round: round, client: u.client)
            }
            ready.append(u)
        }
        // The roll call: every participant's group, weight and (masked mode) public key, relayed by rank 0.
        var keys: [Int: PairwiseMasks.PrivateKey] = [:]
        var header: [Int64] = [], publicKeys: [UInt8] = []
        for u in ready {
            header += [Int64(u.client), Int64(strategy.secureGroup(client: u.client, roster: roster)), Int64(bitPattern: strategy.secureWeight(u).bitPattern)]
            if mode == .masked {
                let pair = PairwiseMasks.keyPair()
                keys[u.client] = pair.privateKey
                publicKeys += pair.publicKey
            }
        }
        let world = federation.world
        let headers = try world.gatherv(header, root: 0), keyBytes = try world.gatherv(publicKeys, root: 0)
        let allHeader = try world.broadcastSized(headers.flatMap { $0 }, root: 0)
        let allKeys = try world.broadcastSized(keyBytes.flatMap { $0 }, root: 0)
        let roll = try Self.rollCall(header: allHeader, keys: allKeys, masked: mode == .masked)

        var clipped = 0
        var out: [ClientUpdate] = []
        for var u in ready {
            let me = roll.first { $0.client == u.client }!
            let members = roll.filter { $0.group == me.group }
            let total = FixedPoint.shareTotal(members.map(\.weight))
            var words = try encodeSummed(u, share: me.weight / total, clipped: &clipped)
            if mode == .masked {
                try PairwiseMasks.mask(&words, me: u.client, key: keys[u.client]!, peers: members.map { ($0.client, $0.publicKey) },
                                       round: round, group: me.group)
            }
            u.tensors = try replaceSummed(u.tensors, with: words)
            out.append(u)
        }
        let total = try world.allreduce(scalar: Int64(clipped), op: .sum)
        return (out, rejections, Int(total))
    }

    /// Why a client refuses its own update before secure aggregation (nil: it is fine).
    static func selfCheck(_ u: ClientUpdate) -> String? {
        if u.examples <= 0 { return "n_k = \(u.examples): it has no training examples" }
        if let loss = u.metrics["loss_total"], !loss.isFinite { return "its training loss is \(loss)" }
        if let bad = u.tensors.firstNonFinite() { return "its update has \(bad.count) non-finite value(s) (first: \(bad.name)[\(bad.index)] = \(bad.value))" }
        return nil
    }

    /// One participant of the round's roll call.
    struct Member { var client: Int; var group: Int; var weight: Double; var publicKey: [UInt8] }

    static func rollCall(header: [Int64], keys: [UInt8], masked: Bool) throws -> [Member] {
        let n = header.count / 3
        guard header.count == 3 * n, !masked || keys.count == 32 * n else {
            throw PilotError.message("secure aggregation: a roll call of \(header.count) header values and \(keys.count) key bytes")
        }
        return (0..<n).map { i in
            Member(client: Int(header[3 * i]), group: Int(header[3 * i + 1]), weight: Double(bitPattern: UInt64(bitPattern: header[3 * i + 2])),
                   publicKey: masked ? Array(keys[(32 * i)..<(32 * i + 32)]) : [])
        }.sorted { $0.client < $1.client }
    }

    /// The update's summed tensors, in update order, as fixed-point words.
    func encodeSummed(_ u: ClientUpdate, share: Double, clipped: inout Int) throws -> [UInt32] {
        let e = FixedPoint.encode(u.tensors.filter { strategy.isSummed($0) }.values, share: share)
        clipped += e.clipped
        return e.values
    }

    /// `t` with its summed tensors' values replaced by the words' bit patterns.
    func replaceSummed(_ t: NamedTensors, with words: [UInt32]) throws -> NamedTensors {
        var values = t.values, next = 0
        for name in t.names where strategy.isSummed(name) {
            for i in t.range(of: name)! { values[i] = Float(bitPattern: words[next]); next += 1 }
        }
        return try t.with(values: values)
    }

    /// The server's step, pure: each group's words summed mod 2³² and decoded (the masks cancel),
    /// then the strategy's secure `aggregate`. It rejects nothing: a dropped update would leave its
    /// masks in the sum, so every check ran on the clients.
    public func server(round: Int, updates: [ClientUpdate], serverState: NamedTensors) throws -> RoundResult {
        guard updates.count >= minimumUpdates else {
            throw PilotError.message("round \(round): \(updates.count) update(s) reached the secure sum, fewer than run.min_clients = \(minimumUpdates), so the round is not aggregated; "
                                     + (round > 1 ? "round \(round - 1) stays the latest checkpoint" : "no round is committed"))
        }
        var sums: [Int: (layout: NamedTensors, first: Int, words: [UInt32])] = [:]
        var clear: [ClientUpdate] = []
        for u in updates {
            let g = strategy.secureGroup(client: u.client, roster: roster)
            let summed = u.tensors.filter { strategy.isSummed($0) }
            let words = summed.values.map(\.bitPattern)
            if var s = sums[g] {
                guard s.layout.names == summed.names, s.layout.shapes == summed.shapes else {
                    throw PilotError.message("round \(round): client \(u.client)'s summed tensors differ from client \(s.first)'s (secure group \(g)), so their masks cannot cancel; the round is not aggregated")
                }
                FixedPoint.add(words, into: &s.words)
                sums[g] = s
            } else {
                sums[g] = (summed, u.client, words)
            }
            clear.append(ClientUpdate(client: u.client, examples: u.examples, tensors: u.tensors.filter { !strategy.isSummed($0) }, metrics: u.metrics))
        }
        var means: [Int: NamedTensors] = [:]
        for (g, s) in sums { means[g] = try s.layout.with(values: FixedPoint.decode(s.words)) }
        return try strategy.aggregate(round: round, means: means, clear: clear, serverState: serverState, roster: roster)
    }
}

extension SecureRound {
    /// The run's line about the mode, at the start.
    static func summary(_ mode: SecureMode) -> String {
        let arithmetic = "fixed point mod 2^32, scale 2^\(FixedPoint.fractionBits), values clipped to ±\(Int(FixedPoint.clipBound))"
        switch mode {
        case .masked: return "secure aggregation: on (pairwise masks from Curve25519 key agreement relayed by rank 0, HKDF-SHA256, ChaCha20; \(arithmetic)); the server sees only masked updates and their sums (docs/privacy.md)"
        case .plainFixedPoint: return "fixed-point averaging without masks (secure.fixed_point; \(arithmetic)): the reference of secure aggregation; the server sees every encoded update"
        }
    }

    /// The round's line when some values fell outside the fixed-point range.
    static func clippedNote(round: Int, count: Int) -> String {
        "round \(round): \(count) value(s) of the clients' updates lay outside the fixed-point range ±\(Int(FixedPoint.clipBound)) and were clipped to it before the secure sum"
    }
}
