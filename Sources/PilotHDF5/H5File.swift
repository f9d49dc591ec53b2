import CHDF5
import Foundation
import PilotCore

/// An HDF5 file of the project: checkpoints, metrics, data shards.
///
/// - `create(path)` writes to a temporary file in the same directory; `commit()` flushes it,
///   fsyncs it, renames it over `path` and fsyncs the directory. A writer that dies before the
///   rename leaves the previous file untouched (a killed in-place overwrite destroys it).
/// - Every dataset carries a `sha256` attribute over its raw little-endian bytes (for strings:
///   each UTF-8 string followed by one 0 byte). Reads verify it and a mismatch throws
///   `PilotError.checksumMismatch` naming the file and dataset. In Python:
///   `hashlib.sha256(ds[()].tobytes()).hexdigest() == ds.attrs["sha256"]`.
/// - Errors carry HDF5's own error stack; nothing is printed to stderr.
public final class H5File: @unchecked Sendable {
    /// Whether reads require, check when present, or skip the per-dataset checksum.
    public enum ChecksumPolicy: Sendable {
        case require
        case verifyIfPresent
        case skip
    }

    public static let checksumAttribute = "sha256"

    /// The final path of the file.
    public let path: String
    /// Where the bytes are being written: the temporary file while creating, else `path`.
    public let workingPath: String
    public let isWritable: Bool
    public let checksums: ChecksumPolicy
    private var fileID: hid_t
    private var committed = false

    private init(path: String, workingPath: String, fileID: hid_t, writable: Bool, checksums: ChecksumPolicy) {
        self.path = path
        self.workingPath = workingPath
        self.fileID = fileID
        self.isWritable = writable
        self.checksums = checksums
    }

    deinit {
        close()
        if isWritable && !committed { unlink(workingPath) }
    }

    /// Starts a new file that will replace `path` atomically on `commit()`.
    public static func create(_ path: String) throws -> H5File {
        let url = URL(fileURLWithPath: path)
        let dir = url.deletingLastPathComponent().path
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDir), isDir.boolValue else {
            throw PilotError.notFound(file: dir, object: "")
        }
        let temp = dir + "/." + url.lastPathComponent + ".tmp-\(getpid())-\(H5File.nextSerial())"
        let id = try withH5 {
            // No object timestamps anywhere (root group included): the same content gives the same bytes.
            let fcpl = try check(H5Pcreate(pilot_H5P_FILE_CREATE()), "H5Pcreate(file create)", file: temp)
            defer { H5Pclose(fcpl) }
            try check(H5Pset_obj_track_times(fcpl, false), "H5Pset_obj_track_times(file)", file: temp)
            return try check(H5Fcreate(temp, pilot_H5F_ACC_TRUNC(), fcpl, pilot_H5P_DEFAULT()),
                             "create (temporary file for atomic commit)", file: temp)
        }
        return H5File(path: path, workingPath: temp, fileID: id, writable: true, checksums: .require)
    }

    /// Opens an existing file read-only. Files written by other tools have no checksums: pass
    /// `.verifyIfPresent` or `.skip` to read them.
    public static func open(_ path: String, checksums: ChecksumPolicy = .require) throws -> H5File {
        guard FileManager.default.fileExists(atPath: path) else { throw PilotError.notFound(file: path, object: "") }
        let id = try withH5 {
            try check(H5Fopen(path, pilot_H5F_ACC_RDONLY(), pilot_H5P_DEFAULT()), "open", file: path)
        }
        return H5File(path: path, workingPath: path, fileID: id, writable: false, checksums: checksums)
    }

    private static let serialLock = NSLock()
    nonisolated(unsafe) private static var serial = 0
    private static func nextSerial() -> Int {
        serialLock.lock(); defer { serialLock.unlock() }
        serial += 1
        return serial
    }

    /// Closes the file. For a created file that was not committed, the temporary file is removed
    /// when the object is released; the previous file at `path` is untouched.
    public func close() {
        withH5 {
            if fileID >= 0 { _ = H5Fclose(fileID); fileID = -1 }
        }
    }

    /// Makes the written file durable and visible at `path`: flush, close, fsync, rename, fsync dir.
    public func commit() throws {
        guard isWritable else { throw PilotError.invalidArgument("commit on '\(path)': file was opened read-only") }
        guard !committed else { return }
        try withH5 {
            try check(H5Fflush(fileID, H5F_SCOPE_GLOBAL), "flush", file: workingPath)
            let status = H5Fclose(fileID)
            fileID = -1
            try check(status, "close", file: workingPath)
        }
        try fsyncPath(workingPath, directory: false)
        if let hook = ProcessInfo.processInfo.environment["PILOT_TEST_CRASH_BEFORE_RENAME"], hook == "1" {
            // Test hook: die exactly between the durable temp write and the rename.
            kill(getpid(), SIGKILL)
        }
        guard rename(workingPath, path) == 0 else {
            let err = String(cString: strerror(errno))
            throw PilotError.message("cannot rename '\(workingPath)' to '\(path)': \(err). The previous file is unchanged; check permissions and free space.")
        }
        committed = true
        try fsyncPath(URL(fileURLWithPath: path).deletingLastPathComponent().path, directory: true)
    }

    private func fsyncPath(_ p: String, directory: Bool) throws {
        let fd = Glibc.open(p, directory ? (O_RDONLY | O_DIRECTORY) : O_RDONLY)
        guard fd >= 0 else {
            throw PilotError.message("cannot open '\(p)' to fsync: \(String(cString: strerror(errno)))")
        }
        defer { Glibc.close(fd) }
        guard fsync(fd) == 0 else {
            throw PilotError.message("fsync of '\(p)' failed: \(String(cString: strerror(errno))). The data may not be on disk; check the filesystem.")
        }
    }

    var displayPath: String { isWritable ? path : workingPath }

    func requireOpen(_ op: String) throws {
        if fileID < 0 { throw PilotError.invalidArgument("\(op) on '\(displayPath)': the file is closed") }
    }

    func requireWritable(_ op: String, _ object: String) throws {
        try requireOpen(op)
        guard isWritable else {
            throw PilotError.invalidArgument("\(op) of '\(object)' on '\(displayPath)': file is read-only; write a new file with H5File.create")
        }
    }

    var id: hid_t { fileID }
}

// MARK: - Groups and navigation

extension H5File {
    static func normalise(_ object: String) -> String {
        let parts = object.split(separator: "/").map(String.init)
        return "/" + parts.joined(separator: "/")
    }

    /// An object-creation property list (group or dataset) that records no timestamps, so that
    /// writing the same content twice gives byte-identical files.
    func untimedCreatePlist(_ cls: hid_t) throws -> hid_t {
        let plist = try check(H5Pcreate(cls), "H5Pcreate(object create)", file: displayPath)
        try check(H5Pset_obj_track_times(plist, false), "H5Pset_obj_track_times", file: displayPath)
        return plist
    }

    /// Creates every missing group on the way to `name` (exclusive), without timestamps.
    func createParents(of name: String) throws {
        let parts = name.split(separator: "/").dropLast()
        var prefix = ""
        for part in parts {
            prefix += "/" + part
            if H5Lexists(id, prefix, pilot_H5P_DEFAULT()) > 0 { continue }
            _ = h5ErrorStack()
            let gcpl = try untimedCreatePlist(pilot_H5P_GROUP_CREATE())
            defer { H5Pclose(gcpl) }
            let g = try check(H5Gcreate2(id, prefix, pilot_H5P_DEFAULT(), gcpl, pilot_H5P_DEFAULT()),
                              "create group", file: displayPath, object: prefix)
            H5Gclose(g)
        }
    }

    /// True when `object` (a group or dataset path) exists.
    public func exists(_ object: String) -> Bool {
        withH5 {
            guard fileID >= 0 else { return false }
            let parts = H5File.normalise(object).split(separator: "/")
            var prefix = ""
            for part in parts {
                prefix += "/" + part
                if H5Lexists(fileID, prefix, pilot_H5P_DEFAULT()) <= 0 { _ = h5ErrorStack(); return false }
            }
            return true
        }
    }

    /// Creates a group and any missing parents; an existing group is fine.
    public func createGroup(_ object: String) throws {
        let name = H5File.normalise(object)
        if name == "/" || isGroup(name) { return }
        try withH5 {
            try requireWritable("createGroup", name)
            try createParents(of: name + "/x")
        }
    }

    public func isGroup(_ object: String) -> Bool { objectType(object) == H5I_GROUP }
    public func isDataset(_ object: String) -> Bool { objectType(object) == H5I_DATASET }

    func objectType(_ object: String) -> H5I_type_t? {
        let name = H5File.normalise(object)
        guard exists(name) || name == "/" else { return nil }
        return withH5 {
            let o = H5Oopen(fileID, name, pilot_H5P_DEFAULT())
            guard o >= 0 else { _ = h5ErrorStack(); return nil }
            defer { H5Oclose(o) }
            return H5Iget_type(o)
        }
    }

    /// Names of the direct children of a group, in name order.
    public func children(of object: String = "/") throws -> [String] {
        let name = H5File.normalise(object)
        return try withH5 {
            try requireOpen("children")
            guard name == "/" || isGroup(name) else { throw PilotError.notFound(file: displayPath, object: name) }
            let g = try check(H5Gopen2(fileID, name, pilot_H5P_DEFAULT()), "open group", file: displayPath, object: name)
            defer { H5Gclose(g) }
            var info = H5G_info_t()
            try check(H5Gget_info(g, &info), "H5Gget_info", file: displayPath, object: name)
            var out: [String] = []
            for i in 0..<info.nlinks {
                let len = H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, nil, 0, pilot_H5P_DEFAULT())
                guard len >= 0 else { throw PilotError.hdf5(operation: "H5Lget_name_by_idx", file: displayPath, object: name, detail: h5ErrorStack()) }
                var buf = [CChar](repeating: 0, count: Int(len) + 1)
                _ = H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, &buf, buf.count, pilot_H5P_DEFAULT())
                out.append(String(cBuffer: buf))
            }
            return out
        }
    }

    /// Every dataset path below `object`, depth first in name order.
    public func datasetPaths(under object: String = "/") throws -> [String] {
        var out: [String] = []
        let base = H5File.normalise(object)
        for child in try children(of: base) {
            let p = base == "/" ? "/" + child : base + "/" + child
            if isGroup(p) { out += try datasetPaths(under: p) } else if isDataset(p) { out.append(p) }
        }
        return out
    }
}

// MARK: - External links

extension H5File {
    /// Makes `object` a link to `target` inside another file (a path relative to this file's
    /// directory). h5py and h5dump follow it transparently, so a round checkpoint can present
    /// `/clients/<k>` while each client writes its own file.
    public func linkExternal(at object: String, file target: String, targetObject: String = "/") throws {
        let name = H5File.normalise(object)
        try withH5 {
            try requireWritable("linkExternal", name)
            try createParents(of: name)
            try check(H5Lcreate_external(target, targetObject, id, name, pilot_H5P_DEFAULT(), pilot_H5P_DEFAULT()),
                      "create external link to '\(target)'", file: displayPath, object: name)
        }
    }

    /// The target (file, object) of an external link, or nil if `object` is not one.
    public func externalLinkTarget(_ object: String) -> (file: String, object: String)? {
        let name = H5File.normalise(object)
        return withH5 {
            var info = H5L_info_t()
            guard H5Lget_info(id, name, &info, pilot_H5P_DEFAULT()) >= 0 else { _ = h5ErrorStack(); return nil }
            guard info.type == H5L_TYPE_EXTERNAL else { return nil }
            let size = info.u.val_size
            var buf = [UInt8](repeating: 0, count: size + 1)
            guard H5Lget_val(id, name, &buf, size, pilot_H5P_DEFAULT()) >= 0 else { _ = h5ErrorStack(); return nil }
            var flags: UInt32 = 0
            var file: UnsafePointer<CChar>? = nil
            var obj: UnsafePointer<CChar>? = nil
            guard H5Lunpack_elink_val(&buf, size, &flags, &file, &obj) >= 0, let file, let obj else { _ = h5ErrorStack(); return nil }
            return (String(cString: file), String(cString: obj))
        }
    }
}
