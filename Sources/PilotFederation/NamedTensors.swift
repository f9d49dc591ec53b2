import PilotCore
import PilotJob
import PilotModel

/// Named tensors over one flat buffer: an ordered list of names, each name's element count, and
/// all their values concatenated in that order. It is what crosses the network for a client
/// (the buffer) and what the client turns back into its state (the names), the one flattening
/// type of the federation code.
///
/// The server never holds a model, so the buffers it receives have no names (`init(values:)`):
/// the layout is the client's, and only the client turns a result back into named tensors.
public struct NamedTensors: Sendable, Equatable {
    public private(set) var names: [String]
    public private(set) var counts: [Int]
    public var values: [Float]

    public init(names: [String], counts: [Int], values: [Float]) throws {
        guard names.count == counts.count else {
            throw PilotError.invalidArgument("named tensors: \(names.count) names but \(counts.count) counts")
        }
        let total = counts.reduce(0, +)
        guard total == values.count else {
            throw PilotError.invalidArgument("vector of \(values.count) values does not match the \(names.count) tensors (\(total))")
        }
        self.names = names; self.counts = counts; self.values = values
    }

    /// A buffer whose layout only its client knows (what the server receives).
    public init(values: [Float]) {
        names = []; counts = []; self.values = values
    }

    /// The values of `names` in `model`, concatenated in that order.
    public init(model: MLLM, names: [String]) throws {
        var values: [Float] = []
        var counts: [Int] = []
        for name in names {
            let t = try model.tensor(named: name).values
            counts.append(t.count)
            values += t
        }
        try self.init(names: names, counts: counts, values: values)
    }

    /// `values` laid out like `group` of `model` (its parameters in their order inside the
    /// group's contiguous slice).
    public init(model: MLLM, group: String, values: [Float]) throws {
        let names = model.names(inGroup: group)
        let counts = try names.map { try model.tensor(named: $0).count }
        try self.init(names: names, counts: counts, values: values)
    }

    /// The same layout over new values (e.g. the server's result for this client).
    public func with(values new: [Float]) throws -> NamedTensors {
        try NamedTensors(names: names, counts: counts, values: new)
    }

    /// The tensors by name, with a `from` name prefix replaced by `to`.
    public func dictionary(renaming from: String = "", to: String = "") throws -> TensorDict {
        guard !names.isEmpty || values.isEmpty else {
            throw PilotError.invalidArgument("a buffer of \(values.count) values has no names (only its client knows its layout)")
        }
        var out = TensorDict()
        var offset = 0
        for (name, n) in zip(names, counts) {
            let key = from.isEmpty || !name.hasPrefix(from) ? name : to + name.dropFirst(from.count)
            out[key] = Array(values[offset..<(offset + n)])
            offset += n
        }
        return out
    }
}

extension NamedTensors {
    /// The names and counts of `model`'s trainable buffer, in its order, over no values yet.
    public static func trainableLayout(_ model: MLLM) -> (names: [String], counts: [Int]) {
        let names = model.parameters.trainableNames
        return (names, names.map { (try? model.tensor(named: $0).count) ?? 0 })
    }

    /// Whether every value is finite; else the first bad tensor, its index and value.
    public func firstNonFinite() -> (name: String, index: Int, value: Float, count: Int)? {
        var bad = 0, first = -1
        for i in values.indices where !values[i].isFinite { bad += 1; if first < 0 { first = i } }
        guard bad > 0 else { return nil }
        var offset = 0
        for (name, n) in zip(names, counts) {
            if first < offset + n { return (name, first - offset, values[first], bad) }
            offset += n
        }
        return ("value", first, values[first], bad)
    }
}
