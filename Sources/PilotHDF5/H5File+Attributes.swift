import CHDF5
import PilotCore

extension H5File {
    /// Sets (or replaces) an attribute on the file root or on any group or dataset.
    public func setAttribute(_ attribute: String, _ value: H5AttributeValue, at object: String = "/") throws {
        let name = H5File.normalise(object)
        try withH5 {
            try requireWritable("setAttribute '\(attribute)'", name)
            if name != "/" && !exists(name) { try createGroup(name) }
            let o = try check(H5Oopen(id, name, pilot_H5P_DEFAULT()), "open object", file: displayPath, object: name)
            defer { H5Oclose(o) }
            try writeAttribute(on: o, attribute, value, objectName: name)
        }
    }

    /// Reads an attribute; nil when the object has no attribute of that name.
    public func attribute(_ attribute: String, at object: String = "/") throws -> H5AttributeValue? {
        let name = H5File.normalise(object)
        return try withH5 {
            try requireOpen("attribute")
            guard name == "/" || exists(name) else { throw PilotError.notFound(file: displayPath, object: name) }
            let o = try check(H5Oopen(id, name, pilot_H5P_DEFAULT()), "open object", file: displayPath, object: name)
            defer { H5Oclose(o) }
            return try readAttribute(on: o, attribute, objectName: name)
        }
    }

    /// Names of the attributes of an object, in name order.
    public func attributeNames(at object: String = "/") throws -> [String] {
        let name = H5File.normalise(object)
        return try withH5 {
            let o = try check(H5Oopen(id, name, pilot_H5P_DEFAULT()), "open object", file: displayPath, object: name)
            defer { H5Oclose(o) }
            var out: [String] = []
            var i: hsize_t = 0
            while true {
                let len = H5Aget_name_by_idx(o, ".", H5_INDEX_NAME, H5_ITER_INC, i, nil, 0, pilot_H5P_DEFAULT())
                if len < 0 { _ = h5ErrorStack(); break }
                var buf = [CChar](repeating: 0, count: Int(len) + 1)
                _ = H5Aget_name_by_idx(o, ".", H5_INDEX_NAME, H5_ITER_INC, i, &buf, buf.count, pilot_H5P_DEFAULT())
                out.append(String(cBuffer: buf))
                i += 1
            }
            return out
        }
    }

    // MARK: helpers (called with the HDF5 lock held)

    func writeAttribute(on obj: hid_t, _ attribute: String, _ value: H5AttributeValue, objectName: String) throws {
        if H5Aexists(obj, attribute) > 0 {
            try check(H5Adelete(obj, attribute), "delete attribute '\(attribute)'", file: displayPath, object: objectName)
        }
        func create(_ fileType: hid_t, _ memType: hid_t, _ shape: [Int], _ bytes: UnsafeRawPointer?) throws {
            let space = try makeSpace(shape, objectName)
            defer { H5Sclose(space) }
            let a = try check(H5Acreate2(obj, attribute, fileType, space, pilot_H5P_DEFAULT(), pilot_H5P_DEFAULT()),
                              "create attribute '\(attribute)'", file: displayPath, object: objectName)
            defer { H5Aclose(a) }
            if let bytes {
                try check(H5Awrite(a, memType, bytes), "write attribute '\(attribute)'", file: displayPath, object: objectName)
            }
        }
        switch value {
        case .int(let v):
            try withUnsafeBytes(of: v) { try create(Int64.fileType, Int64.memoryType, [], $0.baseAddress) }
        case .double(let v):
            try withUnsafeBytes(of: v) { try create(Double.fileType, Double.memoryType, [], $0.baseAddress) }
        case .ints(let v):
            try v.withUnsafeBytes { try create(Int64.fileType, Int64.memoryType, [v.count], v.isEmpty ? nil : $0.baseAddress) }
        case .doubles(let v):
            try v.withUnsafeBytes { try create(Double.fileType, Double.memoryType, [v.count], v.isEmpty ? nil : $0.baseAddress) }
        case .string(let s):
            let type = try makeStringType(objectName)
            defer { H5Tclose(type) }
            try withCStrings([s]) { try create(type, type, [], $0) }
        case .strings(let v):
            let type = try makeStringType(objectName)
            defer { H5Tclose(type) }
            try withCStrings(v) { try create(type, type, [v.count], v.isEmpty ? nil : $0) }
        }
    }

    func readAttribute(on obj: hid_t, _ attribute: String, objectName: String) throws -> H5AttributeValue? {
        guard H5Aexists(obj, attribute) > 0 else { _ = h5ErrorStack(); return nil }
        let a = try check(H5Aopen(obj, attribute, pilot_H5P_DEFAULT()), "open attribute '\(attribute)'", file: displayPath, object: objectName)
        defer { H5Aclose(a) }
        let type = try check(H5Aget_type(a), "attribute type", file: displayPath, object: objectName)
        defer { H5Tclose(type) }
        let space = try check(H5Aget_space(a), "attribute dataspace", file: displayPath, object: objectName)
        defer { H5Sclose(space) }
        let rank = H5Sget_simple_extent_ndims(space)
        let count = Int(H5Sget_simple_extent_npoints(space))
        let kind = describe(type)
        let where_ = "\(objectName)@\(attribute)"
        switch kind {
        case "string":
            let strings = try readStringData(a, space: space, isDataset: false, object: where_, count: count)
            return rank == 0 ? .string(strings.first ?? "") : .strings(strings)
        case "float32", "float64":
            var v = [Double](repeating: 0, count: count)
            try v.withUnsafeMutableBytes { try check(H5Aread(a, Double.memoryType, $0.baseAddress), "read attribute", file: displayPath, object: where_) }
            return rank == 0 ? .double(v[0]) : .doubles(v)
        default:
            if H5Tget_class(type) == H5T_INTEGER {
                var v = [Int64](repeating: 0, count: count)
                try v.withUnsafeMutableBytes { try check(H5Aread(a, Int64.memoryType, $0.baseAddress), "read attribute", file: displayPath, object: where_) }
                return rank == 0 ? .int(v[0]) : .ints(v)
            }
            throw PilotError.typeMismatch(file: displayPath, object: where_, expected: "int, float or string attribute", found: kind)
        }
    }
}
