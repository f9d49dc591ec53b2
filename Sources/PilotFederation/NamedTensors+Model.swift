import PilotCore
import PilotModel
import PilotTensor

extension NamedTensors {
    /// The values of `names` in `model`, with their shapes, in that order (copies).
    public init(model: MLLM, names: [String]) throws {
        self.init()
        for name in names {
            let t = try model.tensor(named: name)
            try append(name, shape: t.shape, values: t.buffer)
        }
    }

    /// The names and shapes of `model`'s trainable buffer, in its order, over no values yet.
    public static func trainableLayout(_ model: MLLM) -> (names: [String], shapes: [[Int]]) {
        let names = model.parameters.trainableNames
        return (names, names.map { (try? model.tensor(named: $0).shape) ?? [0] })
    }
}

extension MLLM {
    /// Names of the parameters of a group, in their order inside the group's contiguous slice.
    public func names(inGroup group: String) -> [String] {
        parameters.entries.filter { $0.group == group }.sorted { $0.offset < $1.offset }.map(\.name)
    }

    /// The trainable tensors, in the trainable buffer's order (copies).
    public func trainableTensors() throws -> NamedTensors {
        try NamedTensors(model: self, names: parameters.trainableNames)
    }

    /// Writes the values of every tensor of `tensors` that this model has (and `filter` accepts);
    /// returns the names it used. A tensor must have the model's shape; a one-dimensional one of the
    /// same size is accepted too (client states of round files of format_version 1, which stored
    /// every tensor flat).
    @discardableResult
    public func assign(_ tensors: NamedTensors, only filter: (String) -> Bool = { _ in true }) throws -> [String] {
        var used: [String] = []
        for (i, name) in tensors.names.enumerated() where filter(name) && parameters.contains(name) {
            let t = try tensor(named: name)
            let shape = tensors.shapes[i]
            guard shape == t.shape || (shape.count == 1 && shape[0] == t.count) else {
                throw PilotError.invalidArgument("state tensor '\(name)' has the shape \(shape); the model's has \(t.shape)")
            }
            let range = tensors.range(of: name)!
            tensors.values.withUnsafeBufferPointer { t.pointer.update(from: $0.baseAddress! + range.lowerBound, count: t.count) }
            used.append(name)
        }
        return used
    }
}
