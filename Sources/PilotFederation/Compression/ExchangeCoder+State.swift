import PilotCore
import PilotTensor

/// The coder's state in the round checkpoints, so a resume continues with the same bits: each
/// client's file keeps its reference and top-k residual (`exchange/reference/<name>`,
/// `exchange/residual/<name>`) beside its state, and the round file keeps the server's copy of
/// every client's reference (`exchange/reference/<client>/<name>` beside the server state).
/// Nothing of it reaches the strategy: it is added when a round is written and taken out when read.
extension ExchangeCoder {
    static let prefix = "exchange/"
    static let referencePrefix = "exchange/reference/"
    static let residualPrefix = "exchange/residual/"

    /// The client states to write, each with its client's coder state.
    func withClientState(_ states: [Int: NamedTensors]) throws -> [Int: NamedTensors] {
        var out = states
        for (c, s) in states {
            var t = s
            if let ref = references[c] { try Self.append(ref, prefix: Self.referencePrefix, to: &t) }
            if let res = residuals[c] { try Self.append(res, prefix: Self.residualPrefix, to: &t) }
            out[c] = t
        }
        return out
    }

    /// The server state to write (rank 0), with every client's reference.
    func withServerState(_ state: NamedTensors) throws -> NamedTensors {
        var t = state
        for c in references.keys.sorted() { try Self.append(references[c]!, prefix: Self.referencePrefix + "\(c)/", to: &t) }
        return t
    }

    /// A client's stored state without the coder's part, which the coder takes back.
    func restoreClient(_ client: Int, _ stored: NamedTensors) throws -> NamedTensors {
        let ref = Self.strip(stored, prefix: Self.referencePrefix), res = Self.strip(stored, prefix: Self.residualPrefix)
        references[client] = ref.isEmpty ? nil : ref
        residuals[client] = res.isEmpty ? nil : res
        return stored.filter { !$0.hasPrefix(Self.prefix) }
    }

    /// The stored server state without the references, which the coder takes back (rank 0).
    func restoreServer(_ stored: NamedTensors) throws -> NamedTensors {
        references = [:]
        for name in stored.names where name.hasPrefix(Self.referencePrefix) {
            let rest = name.dropFirst(Self.referencePrefix.count)
            guard let slash = rest.firstIndex(of: "/"), let c = Int(rest[..<slash]) else {
                throw PilotError.message("the round file's server state has '\(name)', which names no client's exchange reference")
            }
            var ref = references[c] ?? NamedTensors()
            try ref.append(String(rest[rest.index(after: slash)...]), shape: stored.shape(of: name)!, values: stored[name]!)
            references[c] = ref
        }
        return stored.filter { !$0.hasPrefix(Self.prefix) }
    }

    static func append(_ t: NamedTensors, prefix: String, to out: inout NamedTensors) throws {
        for (i, name) in t.names.enumerated() { try out.append(prefix + name, shape: t.shapes[i], values: t[name]!) }
    }

    static func strip(_ t: NamedTensors, prefix: String) -> NamedTensors {
        var out = NamedTensors()
        for (i, name) in t.names.enumerated() where name.hasPrefix(prefix) {
            try! out.append(String(name.dropFirst(prefix.count)), shape: t.shapes[i], values: t[name]!)
        }
        return out
    }
}
