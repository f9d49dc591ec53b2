import PilotCore
import PilotModel
import PilotTensor

/// A client update the server refused, and why (logged, counted in metrics.h5 `clients/rejected`).
public struct Rejection: Sendable, Equatable {
    public var client: Int
    public var reason: String
    public init(client: Int, reason: String) { self.client = client; self.reason = reason }
}

/// The server's checks on every update before any aggregation (#18): n_k > 0, a finite training
/// loss, finite values, the round's expected tensors and shapes, and an optional bound on the
/// update's L2 distance from the coordinate-wise median of the updates with its layout. Rejected
/// updates are excluded, so every weighted mean is renormalised over the rest; a clipped update
/// is pulled back to the bound around that median.
public enum UpdateValidation {
    /// The layout with Pilot's task slot made generic, so that adapters of different tasks compare equal.
    static func normalisedLayout(_ t: NamedTensors) -> [String] {
        zip(t.names, t.shapes).map { name, shape in
            let key = ConnectorNames.slot(of: name).map { ConnectorNames.prefix(ConnectorNames.taskAdaptersRoot) + "*/" + $0.suffix } ?? name
            return "\(key) \(shape)"
        }
    }

    public static func check(_ updates: [ClientUpdate], settings: RobustSettings) -> (accepted: [ClientUpdate], rejected: [Rejection]) {
        var rejected: [Rejection] = []
        var candidates: [ClientUpdate] = []
        for u in updates {
            if u.examples <= 0 {
                rejected.append(Rejection(client: u.client, reason: "n_k = \(u.examples): it has no training examples"))
            } else if let loss = u.metrics["loss_total"], !loss.isFinite {
                rejected.append(Rejection(client: u.client, reason: "its training loss is \(loss)"))
            } else if let bad = u.tensors.firstNonFinite() {
                rejected.append(Rejection(client: u.client, reason: "its update has \(bad.count) non-finite value(s) (first: \(bad.name)[\(bad.index)] = \(bad.value))"))
            } else {
                candidates.append(u)
            }
        }
        // The expected tensors: the layout most updates have (ties: the lowest client's).
        var tally: [[String]: (count: Int, first: Int)] = [:]
        for u in candidates {
            let l = normalisedLayout(u.tensors)
            tally[l] = (tally[l].map { $0.count + 1 } ?? 1, tally[l]?.first ?? u.client)
        }
        let expected = tally.max { a, b in (a.value.count, -a.value.first) < (b.value.count, -b.value.first) }?.key
        var accepted: [ClientUpdate] = []
        for u in candidates {
            let l = normalisedLayout(u.tensors)
            if let expected, l != expected {
                let firstDiff = zip(l, expected).first { $0 != $1 }.map { "'\($0.0)' where the round has '\($0.1)'" }
                    ?? "\(l.count) tensors where the round has \(expected.count)"
                rejected.append(Rejection(client: u.client, reason: "its tensors differ from the round's: \(firstDiff)"))
            } else {
                accepted.append(u)
            }
        }
        if let bound = settings.maxUpdateNorm {
            var kept: [ClientUpdate] = []
            // groups of one exact layout (Pilot: one per task); the median is taken within the group
            let groups = Dictionary(grouping: accepted.indices) { accepted[$0].tensors.names }
            var medians: [[String]: [Float]] = [:]
            for (names, members) in groups {
                medians[names] = (try? RobustAggregator.median.combine(members.map { accepted[$0].tensors.values },
                                                                        weights: members.map { _ in 1 }))?.values
            }
            for var u in accepted {
                guard let m = medians[u.tensors.names] else { kept.append(u); continue }
                var d2 = 0.0
                for (a, b) in zip(u.tensors.values, m) { let d = Double(a) - Double(b); d2 += d * d }
                let distance = d2.squareRoot()
                if distance <= bound { kept.append(u); continue }
                if settings.clip {
                    let s = bound / distance
                    u.tensors.values = zip(u.tensors.values, m).map { a, b in Float(Double(b) + (Double(a) - Double(b)) * s) }
                    kept.append(u)
                } else {
                    rejected.append(Rejection(client: u.client, reason: String(format: "its update is %.4g from the round's median (robust.max_update_norm = %.4g)", distance, bound)))
                }
            }
            accepted = kept
        }
        return (accepted.sorted { $0.client < $1.client }, rejected.sorted { $0.client < $1.client })
    }
}
