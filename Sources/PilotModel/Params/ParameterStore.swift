import PilotCore
import PilotTensor

/// How a parameter starts.
public enum ParameterInit: Sendable, Equatable {
    case zeros
    case ones
    case normal(std: Float)
    case uniform(bound: Float)
    /// The leading columns of a uniform [rows, columns] draw (a LoRA A [in, r] cut from one of rank `columns`).
    case uniformLeadingColumns(bound: Float, columns: Int)
}

/// One named parameter: its stable name (also its HDF5 path), shape, group and initialiser.
public struct ParameterSpec: Sendable {
    public var name: String
    public var shape: [Int]
    /// The unit of training and communication: a variant trains whole groups, and every group's
    /// trainable parameters are contiguous, so a strategy can send a group as one view.
    public var group: String
    public var initializer: ParameterInit
    public init(_ name: String, _ shape: [Int], group: String, init initializer: ParameterInit) {
        self.name = name; self.shape = shape; self.group = group; self.initializer = initializer
    }
}

/// All parameters of a model: trainable ones in one contiguous buffer (with a gradient buffer of the
/// same layout), frozen ones in another. Every parameter is reachable by name as a `Tensor` view.
/// Trainable parameters are ordered by group (in the order the groups were first declared) and
/// by declaration inside a group.
public final class ParameterStore: @unchecked Sendable {
    public struct Entry: Sendable {
        public let name: String
        public let shape: [Int]
        public let group: String
        public let trainable: Bool
        /// Offset in the trainable or the frozen buffer.
        public let offset: Int
        public var count: Int { shape.reduce(1, *) }
    }

    /// [P] every trainable parameter.
    public let trainable: Tensor
    /// [P] gradients, same layout as `trainable`.
    public let gradients: Tensor
    /// [Q] every frozen parameter.
    public let frozen: Tensor
    /// All entries in declaration order.
    public let entries: [Entry]
    private let index: [String: Int]
    /// Trainable groups in buffer order, with their ranges in the trainable buffer.
    public let trainableGroups: [(name: String, range: Range<Int>)]

    public init(specs: [ParameterSpec], trainableGroups isTrainable: (String) -> Bool, seed: UInt64) {
        var groupOrder: [String] = []
        for s in specs where !groupOrder.contains(s.group) { groupOrder.append(s.group) }
        var offsets = [Int](repeating: 0, count: specs.count)
        var tCount = 0, fCount = 0
        var groups: [(String, Range<Int>)] = []
        for g in groupOrder where isTrainable(g) {
            let start = tCount
            for (i, s) in specs.enumerated() where s.group == g {
                offsets[i] = tCount; tCount += s.shape.reduce(1, *)
            }
            groups.append((g, start..<tCount))
        }
        for (i, s) in specs.enumerated() where !isTrainable(s.group) {
            offsets[i] = fCount; fCount += s.shape.reduce(1, *)
        }
        trainable = Tensor(shape: [tCount]); gradients = Tensor(shape: [tCount]); frozen = Tensor(shape: [fCount])
        var es: [Entry] = [], idx: [String: Int] = [:]
        for (i, s) in specs.enumerated() {
            precondition(idx[s.name] == nil, "duplicate parameter name \(s.name)")
            idx[s.name] = i
            es.append(Entry(name: s.name, shape: s.shape, group: s.group, trainable: isTrainable(s.group), offset: offsets[i]))
        }
        entries = es; index = idx; trainableGroups = groups
        // Each parameter draws from its own stream (seed mixed with a hash of its name), so its initial
        // values do not depend on which other parameters a variant declares or which groups train.
        for (i, s) in specs.enumerated() {
            var rng = SeededRNG(seed: seed ^ ParameterStore.nameHash(s.name))
            let t = tensor(es[i])
            let p = t.pointer
            switch s.initializer {
            case .zeros: t.zero()
            case .ones: t.fill(1)
            case let .normal(std): for j in 0..<t.count { p[j] = Float(rng.normal()) * std }
            case let .uniform(bound): for j in 0..<t.count { p[j] = Float((rng.uniform() * 2 - 1)) * bound }
            case let .uniformLeadingColumns(bound, columns):
                let kept = s.shape[1]
                precondition(s.shape.count == 2 && kept <= columns, "\(s.name): \(s.shape) is not the leading columns of \(columns)")
                for j in 0..<(s.shape[0] * columns) {
                    let v = Float((rng.uniform() * 2 - 1)) * bound
                    if j % columns < kept { p[j / columns * kept + j % columns] = v }
                }
            }
        }
    }

    /// FNV-1a of the UTF-8 bytes.
    static func nameHash(_ name: String) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in name.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return h
    }

    /// Copies every parameter under `source` (a name prefix) onto the parameter with the same suffix
    /// under `destination`, e.g. "connector/mlp/" → "connector/task_adapter/" (adapters share suffixes).
    public func copy(from source: String, to destination: String) throws {
        let src = entries.filter { $0.name.hasPrefix(source) }
        guard !src.isEmpty else { throw PilotError.invalidArgument("no parameter starts with '\(source)'") }
        for e in src {
            let dst = try tensor(named: destination + e.name.dropFirst(source.count))
            let s = tensor(e)
            guard dst.shape == s.shape else {
                throw PilotError.invalidArgument("cannot copy \(e.name) \(s.shape) onto \(destination + e.name.dropFirst(source.count)) \(dst.shape)")
            }
            dst.pointer.update(from: s.pointer, count: s.count)
        }
    }

    private func tensor(_ e: Entry) -> Tensor {
        Tensor(view: e.trainable ? trainable.storage : frozen.storage, offset: e.offset, shape: e.shape)
    }

    public func contains(_ name: String) -> Bool { index[name] != nil }

    public func entry(_ name: String) throws -> Entry {
        guard let i = index[name] else {
            throw PilotError.invalidArgument("no parameter named '\(name)' in this model (it has \(entries.count) parameters, e.g. '\(entries.first?.name ?? "")')")
        }
        return entries[i]
    }

    /// The parameter's values (a view: writes go into the model).
    public func tensor(named name: String) throws -> Tensor { tensor(try entry(name)) }

    /// The parameter's gradient view, or nil when it is frozen.
    public func gradient(named name: String) throws -> Tensor? {
        let e = try entry(name)
        return e.trainable ? Tensor(view: gradients.storage, offset: e.offset, shape: e.shape) : nil
    }

    /// Unchecked lookup for the model's own wiring (names are generated by the model).
    func values(_ name: String) -> UnsafeMutablePointer<Float> { try! tensor(named: name).pointer }
    func grad(_ name: String) -> UnsafeMutablePointer<Float>? { try! gradient(named: name)?.pointer }

    /// Names of all parameters, in declaration order.
    public var names: [String] { entries.map(\.name) }
    /// Names of the trainable parameters, in buffer order.
    public var trainableNames: [String] { entries.filter(\.trainable).sorted { $0.offset < $1.offset }.map(\.name) }

    /// The contiguous slice of the trainable buffer that holds `group`.
    public func view(group: String) throws -> Tensor {
        guard let g = trainableGroups.first(where: { $0.name == group }) else {
            throw PilotError.invalidArgument("'\(group)' is not a trainable group of this model; trainable groups: \(trainableGroups.map(\.name).joined(separator: ", "))")
        }
        return Tensor(view: trainable.storage, offset: g.range.lowerBound, shape: [g.range.count])
    }

    /// Same as `view(group:)` for the gradient buffer.
    public func gradientView(group: String) throws -> Tensor {
        let v = try view(group: group)
        return Tensor(view: gradients.storage, offset: v.offset, shape: v.shape)
    }

    /// The contiguous slice of the trainable buffer holding every trainable parameter whose name
    /// starts with `prefix` (e.g. "connector/cross_task_adapters/"); throws if they are not contiguous.
    public func view(prefix: String) throws -> Tensor {
        let es = entries.filter { $0.trainable && $0.name.hasPrefix(prefix) }.sorted { $0.offset < $1.offset }
        guard let first = es.first, let last = es.last else {
            throw PilotError.invalidArgument("no trainable parameter starts with '\(prefix)'")
        }
        let end = last.offset + last.count
        let total = es.reduce(0) { $0 + $1.count }
        guard end - first.offset == total else {
            throw PilotError.invalidArgument("trainable parameters under '\(prefix)' are not contiguous; ask for a group instead (\(trainableGroups.map(\.name).joined(separator: ", ")))")
        }
        return Tensor(view: trainable.storage, offset: first.offset, shape: [total])
    }

    public func zeroGradients() { gradients.zero() }

    public var trainableCount: Int { trainable.count }
    public var frozenCount: Int { frozen.count }
}
