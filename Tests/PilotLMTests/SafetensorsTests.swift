import Foundation
import Testing
import PilotCore
import PilotTestSupport
import PilotLM

/// Safetensors reading (single file, sharded checkpoint), writing, and every kind of bad file.
/// Fixtures: Tests/Fixtures/lm/make_format_fixtures.py (values checked there with safetensors.torch).
@Suite struct SafetensorsTests {
    static let mixed = FormatFixtures.path("mixed.safetensors")

    @Test func readsF32F16BF16BitForBit() throws {
        let f = try SafetensorsFile(path: Self.mixed)
        let expected = try FormatFixtures.json("mixed_expected.json")
        let tensors = try #require(expected["tensors"] as? [String: [String: Any]])
        #expect(f.metadata == ["format": "pt", "note": "pilot fixture"])
        #expect(Set(f.tensorInfos.map(\.name)) == Set(tensors.keys))
        for (name, e) in tensors {
            let info = try #require(f.info(name))
            #expect(info.shape == FormatFixtures.ints(e["shape"]), "\(name)")
            #expect(info.dtype.rawValue == e["dtype"] as? String, "\(name)")
            #expect(try FormatFixtures.bits(f, name) == FormatFixtures.u32s(e["bits"]), "\(name)")
        }
        var wrong = [Float](repeating: 0, count: 3)
        let text = thrownText { try wrong.withUnsafeMutableBufferPointer { try f.readFloat32("model.f32", into: $0) } }
        #expect(text?.contains("model.f32") == true)
        #expect(thrownText { try wrong.withUnsafeMutableBufferPointer { try f.readFloat32("nope", into: $0) } }?.contains("nope") == true)
    }

    @Test func shardedCheckpointIsOneSource() throws {
        let c = try SafetensorsCheckpoint(directory: FormatFixtures.path("sharded"))
        let expected = try FormatFixtures.json("sharded_expected.json")
        #expect(c.files.count == 2)
        #expect(Set(c.tensorInfos.map(\.name)) == Set(expected.keys))
        for (name, bits) in expected {
            #expect(try FormatFixtures.bits(c, name) == FormatFixtures.u32s(bits), "\(name)")
        }
    }

    /// #34 item 6: a length with the top bit set used to be masked to the valid length and read.
    @Test func headerLengthWithTopBitIsRefused() throws {
        let tmp = TemporaryDirectory("st-topbit"); defer { tmp.cleanup() }
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: Self.mixed)))
        bytes[7] |= 0x80
        let path = tmp.file("topbit.safetensors")
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let text = try #require(thrownText { try SafetensorsFile(path: path) })
        #expect(text.contains(path) && text.contains("header says it is"), "\(text)")
    }

    @Test func singleFileCheckpoint() throws {
        let tmp = TemporaryDirectory("st-single"); defer { tmp.cleanup() }
        try FileManager.default.copyItem(atPath: Self.mixed, toPath: tmp.file("model.safetensors"))
        let c = try SafetensorsCheckpoint(directory: tmp.path)
        #expect(c.tensorInfos.count == 5)
        #expect(try FormatFixtures.bits(c, "model.scalar") == [Float(2.5).bitPattern])
        let none = TemporaryDirectory("st-none"); defer { none.cleanup() }
        #expect(thrownText { try SafetensorsCheckpoint(directory: none.path) }?.contains(none.path) == true)
    }

    @Test func missingShardNamesIndexAndShard() throws {
        let tmp = TemporaryDirectory("st-shard"); defer { tmp.cleanup() }
        for f in ["model.safetensors.index.json", "model-00001-of-00002.safetensors"] {
            try FileManager.default.copyItem(atPath: FormatFixtures.path("sharded/" + f), toPath: tmp.file(f))
        }
        let text = try #require(thrownText { try SafetensorsCheckpoint(directory: tmp.path) })
        #expect(text.contains(tmp.file("model.safetensors.index.json")), "\(text)")
        #expect(text.contains("model-00002-of-00002.safetensors"), "\(text)")
    }

    @Test func writerMatchesSafetensorsByteForByte() throws {
        let tmp = TemporaryDirectory("st-write"); defer { tmp.cleanup() }
        let tensors = [TensorInfo(name: "b.weight", shape: [2, 3], dtype: .f32), TensorInfo(name: "a.bias", shape: [3], dtype: .f32),
                       TensorInfo(name: "c", shape: [1], dtype: .f32)]
        let out = tmp.file("w.safetensors")
        try SafetensorsWriter.write(path: out, tensors: tensors, metadata: ["format": "pt"]) { t, buf in
            for i in 0..<buf.count { buf[i] = Float(t.name.count) + Float(i) * 0.25 }
        }
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: out)))
        let n = Int(getLE(UInt64.self, bytes, at: 0))
        #expect(n % 8 == 0)
        #expect(bytes.count == 8 + n + 4 * (6 + 3 + 1))
        let f = try SafetensorsFile(path: out)
        #expect(f.metadata == ["format": "pt"])
        for t in tensors {
            #expect(f.info(t.name) == t)
            #expect(try FormatFixtures.bits(f, t.name) == (0..<t.count).map { (Float(t.name.count) + Float($0) * 0.25).bitPattern })
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: tmp.path) == ["w.safetensors"])
        // The safetensors library writes exactly these bytes for the same tensors (fixture from save_file).
        #expect(bytes == (try FormatFixtures.bytes("writer_reference.safetensors")))
    }

    @Test func writerLeavesNothingOnError() throws {
        let tmp = TemporaryDirectory("st-werr"); defer { tmp.cleanup() }
        let out = tmp.file("w.safetensors")
        let text = thrownText {
            try SafetensorsWriter.write(path: out, tensors: [TensorInfo(name: "x", shape: [4], dtype: .f32)], metadata: [:]) { t, _ in
                throw PilotError.message("fill failed for \(t.name)")
            }
        }
        #expect(text == "fill failed for x")
        #expect(try FileManager.default.contentsOfDirectory(atPath: tmp.path).isEmpty)
    }

    // MARK: bad files, each built from mixed.safetensors by byte edits

    /// mixed.safetensors with its JSON header edited by `edit`, written to `dir/name`.
    static func withHeader(_ dir: TemporaryDirectory, _ name: String, _ edit: (inout [String: Any]) -> Void) throws -> String {
        let bytes = try FormatFixtures.bytes("mixed.safetensors")
        let n = Int(getLE(UInt64.self, bytes, at: 0))
        var header = try #require(try JSONSerialization.jsonObject(with: Data(bytes[8..<(8 + n)])) as? [String: Any])
        edit(&header)
        let json = [UInt8](try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys]))
        var out = [UInt8](repeating: 0, count: 8)
        putLE(UInt64(json.count), into: &out, at: 0)
        let p = dir.file(name)
        try write(out + json + bytes[(8 + n)...], to: p)
        return p
    }

    static func expectError(_ path: String, _ needles: [String], sourceLocation: SourceLocation = #_sourceLocation) {
        let text = thrownText { try SafetensorsFile(path: path) }
        #expect(text != nil, "no error for \(path)", sourceLocation: sourceLocation)
        for n in [path] + needles { #expect(text?.contains(n) == true, "'\(n)' not in: \(text ?? "nil")", sourceLocation: sourceLocation) }
    }

    @Test func truncatedHeader() throws {
        let tmp = TemporaryDirectory("st-bad"); defer { tmp.cleanup() }
        let bytes = try FormatFixtures.bytes("mixed.safetensors")
        try write(Array(bytes[0..<40]), to: tmp.file("cut.safetensors"))
        Self.expectError(tmp.file("cut.safetensors"), ["header"])
        try write(Array(bytes[0..<5]), to: tmp.file("tiny.safetensors"))
        Self.expectError(tmp.file("tiny.safetensors"), ["too short"])
        try write([], to: tmp.file("empty.safetensors"))
        Self.expectError(tmp.file("empty.safetensors"), [])
    }

    @Test func truncatedData() throws {
        let tmp = TemporaryDirectory("st-bad"); defer { tmp.cleanup() }
        let bytes = try FormatFixtures.bytes("mixed.safetensors")
        try write(Array(bytes.dropLast(2)), to: tmp.file("cut.safetensors"))
        Self.expectError(tmp.file("cut.safetensors"), ["model.scalar", "outside"])  // the last tensor in the data area
    }

    @Test func headerLengthLargerThanFile() throws {
        let tmp = TemporaryDirectory("st-bad"); defer { tmp.cleanup() }
        var bytes = try FormatFixtures.bytes("mixed.safetensors")
        putLE(UInt64(1) << 40, into: &bytes, at: 0)
        try write(bytes, to: tmp.file("len.safetensors"))
        Self.expectError(tmp.file("len.safetensors"), ["\(UInt64(1) << 40)"])
        putLE(UInt64.max, into: &bytes, at: 0)
        try write(bytes, to: tmp.file("max.safetensors"))
        Self.expectError(tmp.file("max.safetensors"), ["header"])
    }

    @Test func headerGarbage() throws {
        let tmp = TemporaryDirectory("st-bad"); defer { tmp.cleanup() }
        var bytes = try FormatFixtures.bytes("mixed.safetensors")
        for i in 8..<40 { bytes[i] = 0x7a }  // "zzzz…" where the JSON starts
        try write(bytes, to: tmp.file("garbage.safetensors"))
        Self.expectError(tmp.file("garbage.safetensors"), ["not a JSON object"])
        let p = try Self.withHeader(tmp, "notensor.safetensors") { $0["model.f32"] = "hello" }
        Self.expectError(p, ["model.f32"])
    }

    @Test func offsetsPastTheEnd() throws {
        let tmp = TemporaryDirectory("st-bad"); defer { tmp.cleanup() }
        let p = try Self.withHeader(tmp, "past.safetensors") { h in
            var t = h["model.f32"] as! [String: Any]
            t["data_offsets"] = [1 << 40, (1 << 40) + 60]
            h["model.f32"] = t
        }
        Self.expectError(p, ["model.f32", "outside"])
    }

    @Test func overlappingTensors() throws {
        let tmp = TemporaryDirectory("st-bad"); defer { tmp.cleanup() }
        let p = try Self.withHeader(tmp, "overlap.safetensors") { h in
            let f32 = (h["model.f32"] as! [String: Any])["data_offsets"] as! [Int]
            var t = h["model.f16"] as! [String: Any]
            t["data_offsets"] = [f32[0] + 4, f32[0] + 4 + 48]  // 24 F16 values inside model.f32's bytes
            h["model.f16"] = t
        }
        Self.expectError(p, ["model.f32", "model.f16", "overlap"])
    }

    @Test func offsetsNotMatchingShape() throws {
        let tmp = TemporaryDirectory("st-bad"); defer { tmp.cleanup() }
        let p = try Self.withHeader(tmp, "shape.safetensors") { h in
            var t = h["model.f32"] as! [String: Any]
            t["shape"] = [3, 4]
            h["model.f32"] = t
        }
        Self.expectError(p, ["model.f32", "[3, 4]", "60 bytes"])
        let q = try Self.withHeader(tmp, "huge.safetensors") { h in
            var t = h["model.f32"] as! [String: Any]
            t["shape"] = [1 << 30, 1 << 30, 1 << 30]
            h["model.f32"] = t
        }
        Self.expectError(q, ["model.f32"])
    }

    @Test func unknownDtypeIsRefusedByName() throws {
        let tmp = TemporaryDirectory("st-bad"); defer { tmp.cleanup() }
        let p = try Self.withHeader(tmp, "i64.safetensors") { h in
            var t = h["model.f32"] as! [String: Any]
            t["dtype"] = "I64"
            h["model.f32"] = t
        }
        Self.expectError(p, ["model.f32", "I64", "F32, F16 and BF16"])
    }
}
