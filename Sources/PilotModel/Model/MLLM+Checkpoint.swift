import Foundation
import PilotCore
import PilotHDF5

/// Save and load any subset of parameters by name through the HDF5 store. Dataset paths are the
/// parameter names (e.g. `lm/layers/3/attn/q/lora_a`), optionally under a prefix such as `clients/4/`.
extension MLLM {
    /// Names selected by explicit names, name prefixes and/or trainable groups; all parameters when all are nil.
    public func parameterNames(names: [String]? = nil, prefixes: [String]? = nil, groups: [String]? = nil) throws -> [String] {
        if names == nil && prefixes == nil && groups == nil { return parameters.names }
        var out: [String] = []
        for e in parameters.entries {
            if names?.contains(e.name) == true || prefixes?.contains(where: { e.name.hasPrefix($0) }) == true
                || groups?.contains(e.group) == true { out.append(e.name) }
        }
        for n in names ?? [] { _ = try parameters.entry(n) }
        return out
    }

    /// Writes the named parameters into an open writable file under `prefix`.
    public func write(into file: H5File, names: [String], prefix: String = "") throws {
        for n in names {
            let t = try parameters.tensor(named: n)
            try file.write(t.values, shape: t.shape, at: prefix + n)
        }
    }

    /// Reads the named parameters from an open file under `prefix` (shapes must match).
    public func read(from file: H5File, names: [String], prefix: String = "") throws {
        for n in names {
            let t = try parameters.tensor(named: n)
            let a = try file.read(Float.self, at: prefix + n)
            guard a.shape == t.shape else {
                throw PilotError.typeMismatch(file: file.path, object: prefix + n, expected: "float32 \(t.shape)", found: "\(a.shape)")
            }
            a.values.withUnsafeBufferPointer { t.pointer.update(from: $0.baseAddress!, count: t.count) }
        }
    }

    /// Saves the selected parameters (all by default) to a new HDF5 file, committed atomically, with the
    /// model config, variant and connector options as JSON attributes.
    public func save(to path: String, names: [String]? = nil, prefixes: [String]? = nil, groups: [String]? = nil) throws {
        let sel = try parameterNames(names: names, prefixes: prefixes, groups: groups)
        let f = try H5File.create(path)
        defer { f.close() }
        let enc = JSONEncoder(); enc.outputFormatting = .sortedKeys
        try f.setAttribute("model_config", .string(String(decoding: try enc.encode(config), as: UTF8.self)))
        try f.setAttribute("connector_options", .string(String(decoding: try enc.encode(options), as: UTF8.self)))
        try f.setAttribute("connector_variant", .string(variant.rawValue))
        try f.setAttribute("format", .string("pilot-parameters-v1"))
        try write(into: f, names: sel, prefix: "")
        try f.commit()
    }

    /// Loads the selected parameters from a file written by `save` (or any file with the same dataset
    /// names). With no selection, loads every parameter of this model that the file holds and returns their names.
    @discardableResult
    public func load(from path: String, names: [String]? = nil, prefixes: [String]? = nil, groups: [String]? = nil) throws -> [String] {
        let f = try H5File.open(path)
        defer { f.close() }
        var sel = try parameterNames(names: names, prefixes: prefixes, groups: groups)
        if names == nil && prefixes == nil && groups == nil { sel = sel.filter { f.exists($0) } }
        if let missing = sel.first(where: { !f.exists($0) }) {
            throw PilotError.notFound(file: path, object: missing)
        }
        guard !sel.isEmpty else { throw PilotError.notFound(file: path, object: "any parameter of this model") }
        try read(from: f, names: sel)
        return sel
    }
}
