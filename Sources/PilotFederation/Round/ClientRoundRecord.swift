import PilotJob

/// What one client did in one round, typed: the `ClientHost` fills it in as the round goes, and
/// `row` lays it out as metrics.h5's per-client columns (`ClientRoundMetrics.fields`). A value the
/// round did not produce (a client that did not train, a round without evaluation) is nil and
/// becomes NaN in the file.
public struct ClientRoundRecord: Sendable, Equatable {
    /// Whether the client trained this round (it was sampled; it may still have been rejected).
    public var participated = false
    /// Whether its update was refused (by the server, or by the client itself without a server).
    public var rejected = false
    /// Mean losses over its local steps, and the step count.
    public var losses: LocalLosses?
    /// n_k, its training examples.
    public var examples: Int?
    /// Float32 payload bytes of its update, and of what it received back.
    public var bytesSent: Double?
    public var bytesReceived: Double?
    /// With `exchange.compress*`: the Float32 sizes of the same tensors (`bytes_sent` and
    /// `bytes_received` are then the coded bytes on the wire); nil otherwise.
    public var bytesSentUncompressed: Double?
    public var bytesReceivedUncompressed: Double?
    public var secondsTrain: Double?
    /// The exchange as this client's rank saw it, and the server's aggregation inside it.
    public var secondsCommunicate: Double?
    public var secondsAggregate: Double?
    public var secondsEvaluate: Double?
    /// The strategy's evaluation metrics ("eval_score", FedDPA's "eval_local_weight").
    public var evaluation: [String: Double] = [:]
    /// The same metrics on the model it trained this round, before aggregation (`eval.when`); each
    /// key's column is the key + "_before" ("eval_score_before").
    public var evaluationBefore: [String: Double] = [:]

    public init() {}

    /// The client's row of metrics.h5 (`seconds_checkpoint` is the recorder's, per rank).
    public var row: ClientRoundMetrics {
        var r = ClientRoundMetrics()
        r["participated"] = participated ? 1 : 0
        r["rejected"] = rejected ? 1 : 0
        if let l = losses {
            r["loss_total"] = l.total; r["loss_ce"] = l.ce; r["loss_diff"] = l.diff
            r["loss_balance"] = l.balance; r["loss_z"] = l.z; r["loss_proximal"] = l.proximal
            r["steps"] = Double(l.steps)
        }
        if let v = bytesSent { r["bytes_sent"] = v }
        if let v = bytesReceived { r["bytes_received"] = v }
        if let v = bytesSentUncompressed { r["bytes_sent_uncompressed"] = v }
        if let v = bytesReceivedUncompressed { r["bytes_received_uncompressed"] = v }
        if let v = secondsTrain { r["seconds_train"] = v }
        if let v = secondsCommunicate { r["seconds_communicate"] = v }
        if let v = secondsAggregate { r["seconds_aggregate"] = v }
        if let v = secondsEvaluate { r["seconds_evaluate"] = v }
        for (key, value) in evaluation { r[key] = value }
        for (key, value) in evaluationBefore { r[key + "_before"] = value }
        return r
    }
}

/// A client's mean losses over its local steps in a round (the terms of `LossParts`), and the steps.
public struct LocalLosses: Sendable, Equatable {
    public var total = 0.0, ce = 0.0, diff = 0.0, balance = 0.0, z = 0.0, proximal = 0.0
    public var steps = 0
    public init() {}
}
