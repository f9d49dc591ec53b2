import CHDF5
import Foundation
import PilotCore

extension H5File {
    /// Writes a numeric dataset of any rank (shape [] is a scalar) with its SHA-256 attribute.
    /// Missing parent groups are created. Existing datasets are never overwritten.
    public func write<T: H5Element>(_ values: [T], shape: [Int], at object: String) throws {
        let name = H5File.normalise(object)
        let n = shape.reduce(1, *)
        guard n == values.count, shape.allSatisfy({ $0 >= 0 }) else {
            throw PilotError.invalidArgument("write '\(name)' to '\(displayPath)': shape \(shape) holds \(n) elements but \(values.count) were given")
        }
        let digest = values.withUnsafeBytes { SHA256.hex($0) }
        try withH5 {
            try requireWritable("write", name)
            if exists(name) { throw PilotError.invalidArgument("write '\(name)' to '\(displayPath)': it already exists") }
            let space = try makeSpace(shape, name)
            defer { H5Sclose(space) }
            try createParents(of: name)
            let dcpl = try untimedCreatePlist(pilot_H5P_DATASET_CREATE())
            defer { H5Pclose(dcpl) }
            let ds = try check(H5Dcreate2(id, name, T.fileType, space, pilot_H5P_DEFAULT(), dcpl, pilot_H5P_DEFAULT()),
                               "create dataset (\(T.typeName) \(shape))", file: displayPath, object: name)
            defer { H5Dclose(ds) }
            if n > 0 {
                try values.withUnsafeBytes { buf in
                    try check(H5Dwrite(ds, T.memoryType, pilot_H5S_ALL(), pilot_H5S_ALL(), pilot_H5P_DEFAULT(), buf.baseAddress),
                              "write dataset", file: displayPath, object: name)
                }
            }
            try writeAttribute(on: ds, H5File.checksumAttribute, .string(digest), objectName: name)
        }
    }

    /// Writes a 1-D dataset of variable-length UTF-8 strings (h5py reads them as `str`).
    public func write(strings: [String], at object: String) throws {
        let name = H5File.normalise(object)
        let digest = H5File.stringDigest(strings)
        try withH5 {
            try requireWritable("write", name)
            if exists(name) { throw PilotError.invalidArgument("write '\(name)' to '\(displayPath)': it already exists") }
            let space = try makeSpace([strings.count], name)
            defer { H5Sclose(space) }
            let type = try makeStringType(name)
            defer { H5Tclose(type) }
            try createParents(of: name)
            let dcpl = try untimedCreatePlist(pilot_H5P_DATASET_CREATE())
            defer { H5Pclose(dcpl) }
            let ds = try check(H5Dcreate2(id, name, type, space, pilot_H5P_DEFAULT(), dcpl, pilot_H5P_DEFAULT()),
                               "create string dataset", file: displayPath, object: name)
            defer { H5Dclose(ds) }
            if !strings.isEmpty {
                try withCStrings(strings) { ptrs in
                    try check(H5Dwrite(ds, type, pilot_H5S_ALL(), pilot_H5S_ALL(), pilot_H5P_DEFAULT(), ptrs),
                              "write string dataset", file: displayPath, object: name)
                }
            }
            try writeAttribute(on: ds, H5File.checksumAttribute, .string(digest), objectName: name)
        }
    }

    /// Reads a numeric dataset with its shape and verifies its checksum (per the file's policy).
    public func read<T: H5Element>(_ type: T.Type, at object: String) throws -> H5Array<T> {
        let name = H5File.normalise(object)
        return try withH5 {
            try requireOpen("read")
            guard isDataset(name) else { throw PilotError.notFound(file: displayPath, object: name) }
            let ds = try check(H5Dopen2(id, name, pilot_H5P_DEFAULT()), "open dataset", file: displayPath, object: name)
            defer { H5Dclose(ds) }
            let info = try datasetInfo(ds, name)
            guard info.typeName == T.typeName else {
                throw PilotError.typeMismatch(file: displayPath, object: name, expected: T.typeName, found: info.typeName)
            }
            var values = [T](repeating: T.zero, count: info.count)
            if info.count > 0 {
                try values.withUnsafeMutableBytes { buf in
                    try check(H5Dread(ds, T.memoryType, pilot_H5S_ALL(), pilot_H5S_ALL(), pilot_H5P_DEFAULT(), buf.baseAddress),
                              "read dataset", file: displayPath, object: name)
                }
            }
            try verify(ds, name, actual: { values.withUnsafeBytes { SHA256.hex($0) } })
            return H5Array(shape: info.shape, values: values)
        }
    }

    /// Reads a 1-D dataset of strings (variable- or fixed-length) and verifies its checksum.
    public func readStrings(at object: String) throws -> [String] {
        let name = H5File.normalise(object)
        return try withH5 {
            try requireOpen("readStrings")
            guard isDataset(name) else { throw PilotError.notFound(file: displayPath, object: name) }
            let ds = try check(H5Dopen2(id, name, pilot_H5P_DEFAULT()), "open dataset", file: displayPath, object: name)
            defer { H5Dclose(ds) }
            let info = try datasetInfo(ds, name)
            guard info.typeName == "string" else {
                throw PilotError.typeMismatch(file: displayPath, object: name, expected: "string", found: info.typeName)
            }
            let space = try check(H5Dget_space(ds), "get dataspace", file: displayPath, object: name)
            defer { H5Sclose(space) }
            let strings = try readStringData(ds, space: space, isDataset: true, object: name, count: info.count)
            try verify(ds, name, actual: { H5File.stringDigest(strings) })
            return strings
        }
    }

    /// Element type and shape of a dataset, without reading it.
    public func info(of object: String) throws -> H5DatasetInfo {
        let name = H5File.normalise(object)
        return try withH5 {
            try requireOpen("info")
            guard isDataset(name) else { throw PilotError.notFound(file: displayPath, object: name) }
            let ds = try check(H5Dopen2(id, name, pilot_H5P_DEFAULT()), "open dataset", file: displayPath, object: name)
            defer { H5Dclose(ds) }
            return try datasetInfo(ds, name)
        }
    }

    /// Checks the stored SHA-256 of a dataset without returning the data: nil if the dataset has
    /// no checksum, true/false otherwise. Used by `pilot inspect`.
    public func checksumStatus(of object: String) throws -> Bool? {
        let name = H5File.normalise(object)
        guard try attribute(H5File.checksumAttribute, at: name) != nil else { return nil }
        let info = try self.info(of: name)
        let reader = try H5File.open(workingPath, checksums: .require)
        defer { reader.close() }
        do {
            switch info.typeName {
            case "float32": _ = try reader.read(Float.self, at: name)
            case "float64": _ = try reader.read(Double.self, at: name)
            case "int64": _ = try reader.read(Int64.self, at: name)
            case "uint8": _ = try reader.read(UInt8.self, at: name)
            case "string": _ = try reader.readStrings(at: name)
            default: return nil
            }
            return true
        } catch PilotError.checksumMismatch {
            return false
        }
    }

    // MARK: helpers (called with the HDF5 lock held)

    static func stringDigest(_ strings: [String]) -> String {
        var h = SHA256()
        for s in strings {
            h.update(Array(s.utf8))
            h.update([UInt8(0)])
        }
        return h.finalize().map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }

    func verify(_ ds: hid_t, _ name: String, actual: () -> String) throws {
        if checksums == .skip { return }
        guard let stored = try readAttribute(on: ds, H5File.checksumAttribute, objectName: name)?.stringValue else {
            if checksums == .require {
                throw PilotError.message("file '\(displayPath)' dataset '\(name)' has no sha256 attribute, so it cannot be verified. Files written by pilot always have one; for a file from another tool open it with checksums: .verifyIfPresent.")
            }
            return
        }
        let computed = actual()
        if stored != computed {
            throw PilotError.checksumMismatch(file: displayPath, dataset: name, expected: stored, actual: computed)
        }
    }

    func makeSpace(_ shape: [Int], _ name: String) throws -> hid_t {
        if shape.isEmpty {
            return try check(H5Screate(H5S_SCALAR), "create scalar dataspace", file: displayPath, object: name)
        }
        let dims = shape.map { hsize_t($0) }
        return try check(H5Screate_simple(Int32(dims.count), dims, nil), "create dataspace \(shape)", file: displayPath, object: name)
    }

    func makeStringType(_ name: String) throws -> hid_t {
        let type = try check(H5Tcopy(pilot_H5T_C_S1()), "H5Tcopy(C_S1)", file: displayPath, object: name)
        try check(H5Tset_size(type, pilot_H5T_VARIABLE()), "H5Tset_size(variable)", file: displayPath, object: name)
        try check(H5Tset_cset(type, H5T_cset_t(rawValue: pilot_H5T_CSET_UTF8())), "H5Tset_cset(UTF-8)", file: displayPath, object: name)
        return type
    }

    func datasetInfo(_ ds: hid_t, _ name: String) throws -> H5DatasetInfo {
        let type = try check(H5Dget_type(ds), "get type", file: displayPath, object: name)
        defer { H5Tclose(type) }
        let space = try check(H5Dget_space(ds), "get dataspace", file: displayPath, object: name)
        defer { H5Sclose(space) }
        let rank = H5Sget_simple_extent_ndims(space)
        guard rank >= 0 else { throw PilotError.hdf5(operation: "get rank", file: displayPath, object: name, detail: h5ErrorStack()) }
        var dims = [hsize_t](repeating: 0, count: Int(rank))
        if rank > 0 { H5Sget_simple_extent_dims(space, &dims, nil) }
        return H5DatasetInfo(typeName: describe(type), shape: dims.map { Int($0) })
    }

    func describe(_ type: hid_t) -> String {
        let cls = H5Tget_class(type)
        let size = H5Tget_size(type)
        switch cls {
        case H5T_FLOAT: return size == 4 ? "float32" : size == 8 ? "float64" : "float\(size * 8)"
        case H5T_INTEGER:
            let signed = H5Tget_sign(type) == H5T_SGN_2
            if size == 8 && signed { return "int64" }
            if size == 1 && !signed { return "uint8" }
            return "\(signed ? "int" : "uint")\(size * 8)"
        case H5T_STRING: return "string"
        default: return "class\(cls.rawValue)"
        }
    }

    /// Reads string data from a dataset or attribute (variable- or fixed-length).
    func readStringData(_ obj: hid_t, space: hid_t, isDataset: Bool, object: String, count: Int) throws -> [String] {
        let fileType = try check(isDataset ? H5Dget_type(obj) : H5Aget_type(obj), "get string type", file: displayPath, object: object)
        defer { H5Tclose(fileType) }
        if count == 0 { return [] }
        if H5Tis_variable_str(fileType) > 0 {
            let memType = try makeStringType(object)
            defer { H5Tclose(memType) }
            var ptrs = [UnsafeMutablePointer<CChar>?](repeating: nil, count: count)
            try ptrs.withUnsafeMutableBytes { buf in
                let status = isDataset
                    ? H5Dread(obj, memType, pilot_H5S_ALL(), pilot_H5S_ALL(), pilot_H5P_DEFAULT(), buf.baseAddress)
                    : H5Aread(obj, memType, buf.baseAddress)
                try check(status, "read strings", file: displayPath, object: object)
            }
            let out = ptrs.map { $0.map { String(cString: $0) } ?? "" }
            _ = ptrs.withUnsafeMutableBytes { buf in H5Dvlen_reclaim(memType, space, pilot_H5P_DEFAULT(), buf.baseAddress) }
            return out
        }
        let size = H5Tget_size(fileType)
        var bytes = [CChar](repeating: 0, count: size * count + 1)
        try bytes.withUnsafeMutableBytes { buf in
            let status = isDataset
                ? H5Dread(obj, fileType, pilot_H5S_ALL(), pilot_H5S_ALL(), pilot_H5P_DEFAULT(), buf.baseAddress)
                : H5Aread(obj, fileType, buf.baseAddress)
            try check(status, "read fixed strings", file: displayPath, object: object)
        }
        return (0..<count).map { i in
            let slice = bytes[(i * size)..<((i + 1) * size)].map { UInt8(bitPattern: $0) }
            let end = slice.firstIndex(of: 0) ?? slice.count
            return String(decoding: slice[..<end], as: UTF8.self)
        }
    }
}

/// Calls `body` with a C array of NUL-terminated copies of `strings`, valid only inside `body`.
func withCStrings<R>(_ strings: [String], _ body: (UnsafeRawPointer) throws -> R) rethrows -> R {
    let copies = strings.map { strdup($0) }
    defer { copies.forEach { free($0) } }
    return try copies.withUnsafeBufferPointer { try body(UnsafeRawPointer($0.baseAddress!)) }
}
