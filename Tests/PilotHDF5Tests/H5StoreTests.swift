import Foundation
import PilotCore
import PilotHDF5
import PilotTestSupport
import Testing

@Suite("HDF5 store")
struct H5StoreTests {
    @Test("numeric datasets of every type and rank round-trip with their shapes")
    func roundTripNumeric() throws {
        let dir = TemporaryDirectory(); defer { dir.cleanup() }
        let path = dir.file("a.h5")
        let f32: [Float] = (0..<24).map { Float($0) * 0.5 - 3 }
        let f64: [Double] = [1.0 / 3.0, -2e300, .pi]
        let i64: [Int64] = [Int64.min, -1, 0, 1, Int64.max, 42]
        let u8: [UInt8] = (0..<12).map { UInt8($0 * 21) }
        do {
            let f = try H5File.create(path)
            try f.write(f32, shape: [2, 3, 4], at: "x/y/f32")
            try f.write(f64, shape: [3], at: "f64")
            try f.write(i64, shape: [2, 3], at: "deep/er/still/i64")
            try f.write(u8, shape: [1, 2, 2, 3], at: "img")
            try f.write([Float(7)], shape: [], at: "scalar")
            try f.write([Float](), shape: [0, 4], at: "empty")
            try f.commit()
        }
        let r = try H5File.open(path)
        #expect(try r.read(Float.self, at: "x/y/f32") == H5Array(shape: [2, 3, 4], values: f32))
        #expect(try r.read(Double.self, at: "/f64") == H5Array(shape: [3], values: f64))
        #expect(try r.read(Int64.self, at: "deep/er/still/i64") == H5Array(shape: [2, 3], values: i64))
        #expect(try r.read(UInt8.self, at: "img") == H5Array(shape: [1, 2, 2, 3], values: u8))
        #expect(try r.read(Float.self, at: "scalar") == H5Array(shape: [], values: [7]))
        #expect(try r.read(Float.self, at: "empty") == H5Array(shape: [0, 4], values: []))
        #expect(try r.children() == ["deep", "empty", "f64", "img", "scalar", "x"])
        #expect(try r.children(of: "deep/er") == ["still"])
        #expect(r.isGroup("x/y") && r.isDataset("x/y/f32") && !r.exists("x/z"))
        #expect(try r.datasetPaths() == ["/deep/er/still/i64", "/empty", "/f64", "/img", "/scalar", "/x/y/f32"])
    }

    @Test("reading with the wrong type or a missing name names the file and object")
    func typeAndMissingErrors() throws {
        let dir = TemporaryDirectory(); defer { dir.cleanup() }
        let path = dir.file("t.h5")
        let f = try H5File.create(path)
        try f.write([Float(1), 2], shape: [2], at: "w")
        try f.commit()
        let r = try H5File.open(path)
        #expect(throws: PilotError.typeMismatch(file: path, object: "/w", expected: "float64", found: "float32")) {
            _ = try r.read(Double.self, at: "w")
        }
        #expect(throws: PilotError.notFound(file: path, object: "/nope")) { _ = try r.read(Float.self, at: "nope") }
        #expect(throws: PilotError.self) { try f.write([Float(1)], shape: [2], at: "bad") }
    }

    @Test("attributes: scalars, arrays and UTF-8 strings on root, groups and datasets")
    func attributes() throws {
        let dir = TemporaryDirectory(); defer { dir.cleanup() }
        let path = dir.file("attr.h5")
        let f = try H5File.create(path)
        try f.write([Int64(1)], shape: [1], at: "g/d")
        try f.setAttribute("round", .int(3))
        try f.setAttribute("lr", .double(4e-5), at: "g")
        try f.setAttribute("name", .string("naïve café ✓"), at: "g/d")
        try f.setAttribute("dims", .ints([1, 2, 3]), at: "g")
        try f.setAttribute("ws", .doubles([0.25, 0.75]))
        try f.setAttribute("tasks", .strings(["vqa", "caption", "grounding"]))
        try f.setAttribute("round", .int(4))  // replacing is allowed
        try f.commit()
        let r = try H5File.open(path)
        #expect(try r.attribute("round") == .int(4))
        #expect(try r.attribute("lr", at: "g") == .double(4e-5))
        #expect(try r.attribute("name", at: "g/d") == .string("naïve café ✓"))
        #expect(try r.attribute("dims", at: "g") == .ints([1, 2, 3]))
        #expect(try r.attribute("ws") == .doubles([0.25, 0.75]))
        #expect(try r.attribute("tasks") == .strings(["vqa", "caption", "grounding"]))
        #expect(try r.attribute("missing") == nil)
        #expect(try r.attributeNames() == ["round", "tasks", "ws"])
        #expect(try r.attributeNames(at: "g/d") == ["name", "sha256"])
    }

    @Test("variable-length UTF-8 string datasets round-trip")
    func strings() throws {
        let dir = TemporaryDirectory(); defer { dir.cleanup() }
        let path = dir.file("s.h5")
        let texts = ["<image>\nwhat colour is the circle?", "", "ünïcødé ✓ 日本", "a\nb"]
        let f = try H5File.create(path)
        try f.write(strings: texts, at: "conv/human")
        try f.write(strings: [], at: "conv/none")
        try f.commit()
        let r = try H5File.open(path)
        #expect(try r.readStrings(at: "conv/human") == texts)
        #expect(try r.readStrings(at: "conv/none") == [])
        #expect(try r.info(of: "conv/human") == H5DatasetInfo(typeName: "string", shape: [4]))
    }

    @Test("the stored checksum is the SHA-256 of the raw little-endian bytes")
    func checksumValue() throws {
        let dir = TemporaryDirectory(); defer { dir.cleanup() }
        let path = dir.file("c.h5")
        let values: [Float] = [1, 2, 3]
        let f = try H5File.create(path)
        try f.write(values, shape: [3], at: "v")
        try f.commit()
        let r = try H5File.open(path)
        let expected = values.withUnsafeBytes { SHA256.hex($0) }
        #expect(try r.attribute("sha256", at: "v") == .string(expected))
        #expect(try r.checksumStatus(of: "v") == true)
    }

    @Test("a flipped byte inside a dataset on disk is caught and named")
    func flippedByte() throws {
        let dir = TemporaryDirectory(); defer { dir.cleanup() }
        let path = dir.file("flip.h5")
        // A distinctive pattern that is easy to find in the raw file.
        let values: [Float] = (0..<256).map { Float($0) + 0.125 }
        let f = try H5File.create(path)
        try f.write(values, shape: [16, 16], at: "clients/1/lora")
        try f.commit()
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        let needle = values.withUnsafeBytes { Array($0.prefix(64)) }
        let at = try #require(find(needle, in: bytes))
        bytes[at + 200] ^= 0x01
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let r = try H5File.open(path)
        do {
            _ = try r.read(Float.self, at: "clients/1/lora")
            Issue.record("a corrupted dataset was read without error")
        } catch let PilotError.checksumMismatch(file, dataset, _, _) {
            #expect(file == path)
            #expect(dataset == "/clients/1/lora")
        }
        #expect(try r.checksumStatus(of: "clients/1/lora") == false)
        let message = "\(PilotError.checksumMismatch(file: path, dataset: "/clients/1/lora", expected: "ab", actual: "cd"))"
        #expect(message.contains(path) && message.contains("/clients/1/lora"))
    }

    @Test("an uncommitted file never appears and leaves the previous file intact")
    func uncommittedIsDiscarded() throws {
        let dir = TemporaryDirectory(); defer { dir.cleanup() }
        let path = dir.file("ckpt.h5")
        do {
            let f = try H5File.create(path)
            try f.write([Int64(1)], shape: [1], at: "round")
            try f.commit()
        }
        do {
            let f = try H5File.create(path)
            try f.write([Int64(2)], shape: [1], at: "round")
            // dropped without commit
        }
        #expect(try H5File.open(path).read(Int64.self, at: "round").values == [1])
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["ckpt.h5"])
    }

    @Test("HDF5's error stack becomes the error message, and nothing reaches stderr")
    func errorStackAndSilence() throws {
        let dir = TemporaryDirectory(); defer { dir.cleanup() }
        let path = dir.file("not-hdf5.h5")
        try "this is not an HDF5 file".write(toFile: path, atomically: true, encoding: .utf8)
        // On a fresh thread: libhdf5 keeps its print-errors setting per thread.
        let captured = try captureStderr {
            let outcome = OnThread.run { () -> Error? in
                do { _ = try H5File.open(path); return nil } catch { return error }
            }
            guard case let PilotError.hdf5(op, file, _, detail)? = outcome else {
                Issue.record("expected an HDF5 error, got \(String(describing: outcome))")
                return
            }
            #expect(op == "open")
            #expect(file == path)
            #expect(detail.contains("H5F"), "detail was: \(detail)")
        }
        #expect(captured.isEmpty, "HDF5 printed to stderr: \(captured)")
        #expect(throws: PilotError.notFound(file: dir.file("missing.h5"), object: "")) { _ = try H5File.open(dir.file("missing.h5")) }
    }

    @Test("files from other tools can be read without checksums only when asked")
    func foreignFiles() throws {
        let dir = TemporaryDirectory(); defer { dir.cleanup() }
        let path = dir.file("foreign.h5")
        let script = "import h5py, numpy as np\nwith h5py.File('\(path)','w') as f:\n  f['w'] = np.arange(6, dtype=np.float32).reshape(2,3)\n  f['ids'] = np.array([3, -1, 7], dtype=np.int32)"
        let r = try runProcess("/usr/bin/python3", ["-c", script])
        try #require(r.status == 0, "h5py failed: \(r.stderr)")
        #expect(throws: PilotError.self) { _ = try H5File.open(path).read(Float.self, at: "w") }
        let w = try H5File.open(path, checksums: .verifyIfPresent).read(Float.self, at: "w")
        #expect(w == H5Array(shape: [2, 3], values: [0, 1, 2, 3, 4, 5]))
        let ids = try H5File.open(path, checksums: .verifyIfPresent).read(Int32.self, at: "ids")
        #expect(ids == H5Array(shape: [3], values: [3, -1, 7]))
    }
}

func find(_ needle: [UInt8], in haystack: [UInt8]) -> Int? {
    guard needle.count <= haystack.count else { return nil }
    outer: for i in 0...(haystack.count - needle.count) {
        for j in needle.indices where haystack[i + j] != needle[j] { continue outer }
        return i
    }
    return nil
}

/// Runs `body` with file descriptor 2 redirected to a temporary file and returns what was written.
func captureStderr(_ body: () throws -> Void) throws -> String {
    let dir = TemporaryDirectory(); defer { dir.cleanup() }
    let path = dir.file("stderr")
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    let saved = dup(2)
    dup2(fd, 2)
    defer { dup2(saved, 2); close(saved); close(fd) }
    try body()
    return (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
}

@Suite("HDF5 store determinism")
struct H5DeterminismTests {
    @Test("the same content written twice, seconds apart, gives byte-identical files")
    func byteIdentical() throws {
        let dir = TemporaryDirectory(); defer { dir.cleanup() }
        func write(_ path: String) throws {
            let f = try H5File.create(path)
            try f.write([Float(1), 2, 3], shape: [3], at: "a/b/c")
            try f.write(strings: ["x", "y"], at: "a/s")
            try f.createGroup("empty/group")
            try f.setAttribute("round", .int(1), at: "a")
            try f.commit()
        }
        try write(dir.file("one.h5"))
        sleep(1)  // object timestamps have one-second resolution
        try write(dir.file("two.h5"))
        let one = try Data(contentsOf: URL(fileURLWithPath: dir.file("one.h5")))
        let two = try Data(contentsOf: URL(fileURLWithPath: dir.file("two.h5")))
        #expect(one == two)
    }
}

/// Runs a closure on a new thread and waits for its result.
final class ThreadSlot<R>: @unchecked Sendable {
    var value: R?
    let done = DispatchSemaphore(value: 0)
}

enum OnThread {
    static func run<R>(_ body: @escaping @Sendable () -> R) -> R {
        let slot = ThreadSlot<R>()
        let t = Thread { slot.value = body(); slot.done.signal() }
        t.start()
        slot.done.wait()
        return slot.value!
    }
}
