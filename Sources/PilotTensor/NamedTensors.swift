import PilotCore

/// Named tensors over one flat buffer: an ordered list of names, each tensor's shape, and all their
/// values concatenated in that order. It is the one type a client's tensors have from the moment
/// they leave its model until they go back into one: the update it sends, what the server
/// aggregates and returns, the client's state between rounds, and what a checkpoint stores (each
/// tensor as a dataset of its shape). docs/federation.md lists every change of form in a round.
///
/// The server never holds a model, so a buffer it receives without names (`init(values:)`) has
/// the layout of its client; the exchange carries names and shapes with the values.
public struct NamedTensors: Sendable, Equatable {
    public private(set) var names: [String]
    public private(set) var shapes: [[Int]]
    public var values: [Float]
    /// Where each tensor starts in `values`.
    public private(set) var offsets: [Int]
    private var index: [String: Int]

    /// Names must be unique; the shapes' element counts must add up to `values.count`.
    public init(names: [String], shapes: [[Int]], values: [Float]) throws {
        guard names.count == shapes.count else {
            throw PilotError.invalidArgument("named tensors: \(names.count) names but \(shapes.count) shapes")
        }
        var offsets: [Int] = [], index: [String: Int] = [:], total = 0
        offsets.reserveCapacity(names.count)
        for (i, (name, shape)) in zip(names, shapes).enumerated() {
            guard shape.allSatisfy({ $0 >= 0 }) else {
                throw PilotError.invalidArgument("named tensors: '\(name)' has the shape \(shape), with a negative dimension")
            }
            guard index.updateValue(i, forKey: name) == nil else {
                throw PilotError.invalidArgument("named tensors: '\(name)' appears twice")
            }
            offsets.append(total)
            total += shape.reduce(1, *)
        }
        guard total == values.count else {
            throw PilotError.invalidArgument("vector of \(values.count) values does not match the \(names.count) tensors (\(total))")
        }
        self.names = names; self.shapes = shapes; self.values = values; self.offsets = offsets; self.index = index
    }

    /// One-dimensional tensors of `counts` values each.
    public init(names: [String], counts: [Int], values: [Float]) throws {
        try self.init(names: names, shapes: counts.map { [$0] }, values: values)
    }

    /// A buffer whose layout only its client knows.
    public init(values: [Float]) {
        names = []; shapes = []; self.values = values; offsets = []; index = [:]
    }

    /// No tensors.
    public init() { self.init(values: []) }

    public var isEmpty: Bool { names.isEmpty && values.isEmpty }
    /// Each tensor's element count.
    public var counts: [Int] { shapes.map { $0.reduce(1, *) } }

    public func contains(_ name: String) -> Bool { index[name] != nil }
    public func shape(of name: String) -> [Int]? { index[name].map { shapes[$0] } }
    /// Where `name`'s values lie in `values`.
    public func range(of name: String) -> Range<Int>? {
        index[name].map { offsets[$0]..<(offsets[$0] + shapes[$0].reduce(1, *)) }
    }
    /// `name`'s values (a view of `values`), or nil.
    public subscript(name: String) -> ArraySlice<Float>? { range(of: name).map { values[$0] } }

    /// Adds a tensor at the end.
    public mutating func append(_ name: String, shape: [Int], values new: some Collection<Float>) throws {
        guard index[name] == nil else { throw PilotError.invalidArgument("named tensors: '\(name)' appears twice") }
        let n = shape.reduce(1, *)
        guard shape.allSatisfy({ $0 >= 0 }), new.count == n else {
            throw PilotError.invalidArgument("named tensors: '\(name)' of shape \(shape) needs \(n) values, got \(new.count)")
        }
        index[name] = names.count
        names.append(name); shapes.append(shape); offsets.append(values.count)
        values.append(contentsOf: new)
    }

    /// The same layout over new values (e.g. the server's result for this client).
    public func with(values new: [Float]) throws -> NamedTensors {
        try NamedTensors(names: names, shapes: shapes, values: new)
    }

    /// These tensors, each replaced by `other`'s of the same name, followed by `other`'s new ones.
    public func merging(_ other: NamedTensors) throws -> NamedTensors {
        guard !other.names.isEmpty || other.values.isEmpty else {
            throw PilotError.invalidArgument("a buffer of \(other.values.count) values has no names (only its client knows its layout)")
        }
        var out = NamedTensors()
        out.values.reserveCapacity(values.count + other.values.count)
        for (i, name) in names.enumerated() {
            if let j = other.index[name] {
                try out.append(name, shape: other.shapes[j], values: other[name]!)
            } else {
                try out.append(name, shape: shapes[i], values: values[offsets[i]..<(offsets[i] + shapes[i].reduce(1, *))])
            }
        }
        for (j, name) in other.names.enumerated() where index[name] == nil {
            try out.append(name, shape: other.shapes[j], values: other[name]!)
        }
        return out
    }

    /// The tensors whose names `keep` accepts, in their order.
    public func filter(_ keep: (String) -> Bool) -> NamedTensors {
        var out = NamedTensors()
        for (i, name) in names.enumerated() where keep(name) {
            try! out.append(name, shape: shapes[i], values: values[offsets[i]..<(offsets[i] + shapes[i].reduce(1, *))])
        }
        return out
    }

    /// The same tensors with each name passed through `rename` (which must keep them unique).
    public func renamed(_ rename: (String) -> String) throws -> NamedTensors {
        try NamedTensors(names: names.map(rename), shapes: shapes, values: values)
    }

    /// Whether every value is finite; else the first bad tensor, its index and value, and how many are bad.
    public func firstNonFinite() -> (name: String, index: Int, value: Float, count: Int)? {
        var bad = 0, first = -1
        for i in values.indices where !values[i].isFinite { bad += 1; if first < 0 { first = i } }
        guard bad > 0 else { return nil }
        if let i = offsets.lastIndex(where: { $0 <= first }), i < names.count, first < offsets[i] + shapes[i].reduce(1, *) {
            return (names[i], first - offsets[i], values[first], bad)
        }
        return ("value", first, values[first], bad)
    }
}

extension NamedTensors: ExpressibleByDictionaryLiteral {
    /// One-dimensional tensors in the literal's order: `[:]` is none, `["m": [1, 2]]` one of 2 values.
    public init(dictionaryLiteral elements: (String, [Float])...) {
        self.init()
        for (name, v) in elements {
            do { try append(name, shape: [v.count], values: v) } catch { preconditionFailure("\(error)") }
        }
    }
}
