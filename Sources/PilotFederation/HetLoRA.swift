import PilotCore
import PilotJob
import PilotTensor

/// Heterogeneous LoRA ranks (HetLoRA, Cho et al., 2024): client k trains A_k [in, r_k] and B_k [r_k, out]
/// on every target. The server zero-pads each client's factors to the largest rank R (A's columns, B's
/// rows), so every update has one layout and the averaging methods average as they always did; each
/// client then takes the leading r_k components of what comes back (docs/baselines.md).
///
/// A LoRA factor is a tensor whose name ends in `lora_a` ([in, r]) or `lora_b` ([r, out]); every other
/// tensor passes through unchanged. Padding, then taking the leading components, gives the same bits back.
public enum HetLoRA {
    public enum Factor: Sendable { case a, b }

    /// Whether `name` is a LoRA factor, and which.
    public static func factor(_ name: String) -> Factor? {
        if name.hasSuffix("lora_a") { return .a }
        if name.hasSuffix("lora_b") { return .b }
        return nil
    }

    /// The rank of a factor of shape `shape` (A: its columns, B: its rows).
    static func rank(of factor: Factor, shape: [Int]) -> Int { factor == .a ? shape[1] : shape[0] }

    /// The LoRA rank of `tensors` (nil: no factor); throws when its factors disagree.
    public static func rank(of tensors: NamedTensors) throws -> Int? {
        var found: (name: String, rank: Int)? = nil
        for (name, shape) in zip(tensors.names, tensors.shapes) {
            guard let f = factor(name) else { continue }
            guard shape.count == 2 else { throw PilotError.invalidArgument("LoRA factor '\(name)' has the shape \(shape); expected two dimensions") }
            let r = rank(of: f, shape: shape)
            if let found, found.rank != r {
                throw PilotError.invalidArgument("LoRA factors of two ranks in one update: '\(found.name)' has rank \(found.rank), '\(name)' \(r)")
            }
            found = (name, r)
        }
        return found?.rank
    }

    /// `tensors` with every LoRA factor at rank `r`: its leading min(r, r_k) components kept, the rest
    /// zero (A [in, r_k] → [in, r], B [r_k, out] → [r, out]). Padding to the largest rank, and taking a
    /// client's leading components back, are both this.
    public static func resized(_ tensors: NamedTensors, rank r: Int) throws -> NamedTensors {
        precondition(r > 0, "HetLoRA.resized: rank \(r)")
        var out = NamedTensors()
        for (name, shape) in zip(tensors.names, tensors.shapes) {
            let v = tensors[name]!
            guard let f = factor(name), shape.count == 2, rank(of: f, shape: shape) != r else {
                try out.append(name, shape: shape, values: v)
                continue
            }
            switch f {
            case .a:
                // [in, r_k] row-major: each row's leading columns
                let (rows, have) = (shape[0], shape[1]), keep = min(have, r)
                var values = [Float](repeating: 0, count: rows * r)
                let base = v.startIndex
                for i in 0..<rows {
                    for j in 0..<keep { values[i * r + j] = v[base + i * have + j] }
                }
                try out.append(name, shape: [rows, r], values: values)
            case .b:
                // [r_k, out] row-major: the leading rows
                let (have, cols) = (shape[0], shape[1]), keep = min(have, r)
                var values = Array(v.prefix(keep * cols))
                values += [Float](repeating: 0, count: (r - keep) * cols)
                try out.append(name, shape: [r, cols], values: values)
            }
        }
        return out
    }

    /// The server's first step with clients of different ranks: every update's factors zero-padded to
    /// the largest rank. An update whose rank is not its client's (`lora.ranks`) is refused. Without
    /// `lora`, or with one rank for all, the updates pass unchanged.
    public static func padded(_ updates: [ClientUpdate], lora: ClientLoRA?) throws -> (updates: [ClientUpdate], rejected: [Rejection]) {
        guard let lora, !lora.isUniform else { return (updates, []) }
        var out: [ClientUpdate] = [], rejected: [Rejection] = []
        for var u in updates {
            let r: Int?
            do { r = try rank(of: u.tensors) } catch {
                rejected.append(Rejection(client: u.client, reason: "\(error)"))
                continue
            }
            if let r, r != lora.ranks[u.client] {
                rejected.append(Rejection(client: u.client, reason: "its LoRA has rank \(r), but model.lora_ranks gives client \(u.client) rank \(lora.ranks[u.client])"))
                continue
            }
            u.tensors = try resized(u.tensors, rank: lora.maxRank)
            out.append(u)
        }
        return (out, rejected)
    }
}
