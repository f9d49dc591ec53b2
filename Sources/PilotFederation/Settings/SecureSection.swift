import PilotCore

/// `[secure]`: secure aggregation of the averaging step (docs/privacy.md).
public struct SecureSection: ConfigSection {
    public static let name = "secure"
    public var aggregation: Bool?
    public var fixedPoint: Bool?
    public var loraInClear: Bool?

    public static let keys: [ConfigKey] = [
        .init(name: "secure.aggregation", kind: .bool, defaultValue: nil,
              help: "true: each client masks its fixed-point update with pairwise masks that cancel in the sum (Bonawitz et al., 2017; Curve25519 key agreement relayed by the server), so the server sees only masked updates and their sum; averaging methods only (docs/privacy.md); unset: false", optional: true),
        .init(name: "secure.fixed_point", kind: .bool, defaultValue: nil,
              help: "true with secure.aggregation = false: the same fixed-point averaging without masks (the server sees each encoded update), the reference that secure aggregation equals bit for bit; unset: false", optional: true),
        .init(name: "secure.lora_in_clear", kind: .bool, defaultValue: nil,
              help: "pilot with secure.aggregation: acknowledges that only Eq. 10's task adapters are masked and every client's LoRA still reaches the server in the clear (ATA needs the distances between them); required for pilot", optional: true),
    ]
}

/// How the averaging step's sums are formed (`[secure]`).
public enum SecureMode: String, Sendable, Equatable {
    /// Fixed-point updates with pairwise masks (`secure.aggregation = true`).
    case masked
    /// The same fixed-point updates without masks (`secure.fixed_point = true`): the reference.
    case plainFixedPoint = "fixed_point"
}

extension RunSettings {
    /// nil: the float averaging of every committed result.
    public var secureMode: SecureMode? {
        if secure.aggregation == true { return .masked }
        return secure.fixedPoint == true ? .plainFixedPoint : nil
    }

    /// Refuses, at config time, secure aggregation (or its fixed-point reference) where the server
    /// needs each client's update, naming the key and the reason.
    func checkSecure() throws {
        guard let mode = secureMode else { return }
        let key = mode == .masked ? "secure.aggregation = true" : "secure.fixed_point = true"
        if let c = compression {
            throw PilotError.invalidArgument("\(key) with exchange.compress = \"\(c.up.rawValue)\" and exchange.compress_down = \"\(c.down.rawValue)\": the masked sum is of fixed-point integers mod 2^32, which a lossy code of the masked values would break, so the two do not combine; remove the exchange.compress keys or the [secure] keys")
        }
        if secure.aggregation == true && secure.fixedPoint == false {
            throw PilotError.invalidArgument("secure.aggregation = true sums fixed-point updates, so secure.fixed_point = false contradicts it: remove secure.fixed_point")
        }
        switch run.algorithm {
        case .local, .centralized:
            throw PilotError.invalidArgument("\(key): run.algorithm = \(run.algorithm.rawValue) averages no client updates, so there is nothing to aggregate securely; remove the [secure] keys")
        case .pilot where mode == .masked && secure.loraInClear != true:
            throw PilotError.invalidArgument("\(key) with run.algorithm = pilot: only Eq. 10 (the task adapters, summed within each task) can be masked; ATA (pilot.ata) needs every client's LoRA to compute the distances between them, so each LoRA still reaches the server in the clear. Set secure.lora_in_clear = true to acknowledge it, or use an averaging method (fedavg, fedprox, fedadam, shepherd, feddpa)")
        default: break
        }
        if robust.rule != .mean {
            throw PilotError.invalidArgument("\(key): robust.aggregator = \(robust.aggregator ?? "mean") needs every client's individual update, which the server does not see under secure aggregation; remove robust.aggregator (the n_k-weighted mean) or turn secure aggregation off")
        }
        if robust.maxUpdateNorm != nil {
            throw PilotError.invalidArgument("\(key): robust.max_update_norm compares every client's update with the round's median, which needs the individual updates the server does not see under secure aggregation; remove robust.max_update_norm (and robust.on_bad) or turn secure aggregation off")
        }
        if let ranks = model.loraRanks, Set(ranks).count > 1 {
            throw PilotError.invalidArgument("\(key): model.lora_ranks mixes ranks \(Set(ranks).sorted()), which the server zero-pads update by update (HetLoRA); secure aggregation sums the updates as they arrive, so give every client one rank (model.lora_rank) or turn secure aggregation off")
        }
    }
}
