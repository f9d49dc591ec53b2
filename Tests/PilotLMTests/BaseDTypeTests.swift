import Foundation
import PilotCore
import PilotLM
import PilotTensor
import PilotTestSupport
import Testing

/// #33 item 2: the frozen LM's matrices in f32, bf16 or q8 — held in memory, prepared for a node, and
/// written by `pilot model import --dtype`; GGUF Q8_0 blocks go to q8 without a round trip through Float32.
@Suite("base dtypes: bf16 and q8 frozen weights")
struct BaseDTypeTests {
    static func ggufFile(_ dir: TemporaryDirectory, matrices: GGUFBuilder.TensorType? = nil) throws -> String {
        let path = dir.file("tiny.gguf")
        try Data(try HostileFixtures.gguf(matrices: matrices).build().bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// Every matrix of `source` as stored in `dtype`, decoded back to Float32.
    static func decoded(_ source: TensorSource, _ name: String, _ dtype: BaseDType) throws -> [Float] {
        let t = source.info(name)!
        let raw = UnsafeMutableRawBufferPointer.allocate(byteCount: dtype.bytes(rows: t.shape[0], cols: t.shape[1]), alignment: 4)
        defer { raw.deallocate() }
        try source.readEncoded(name, as: dtype, into: raw)
        var out = [Float](repeating: 0, count: t.count)
        FrozenMatrix(dtype: dtype, rows: t.shape[0], cols: t.shape[1], raw: UnsafeRawPointer(raw.baseAddress!)).decodeRows(0, t.shape[0], into: &out)
        return out
    }

    /// The GGUF name of a Hugging Face tensor name of the fixture.
    static func ggufName(_ hf: String) -> String {
        if let top = GGUFLlamaSource.topNames.first(where: { $0.value == hf })?.key { return top }
        let p = hf.split(separator: ".").map(String.init)
        let kinds = Dictionary(uniqueKeysWithValues: GGUFLlamaSource.blockNames.map { ($1, $0) })
        return "blk.\(p[2]).\(kinds[p[3...].dropLast().joined(separator: ".")]!).weight"
    }

    static func float32(_ source: TensorSource, _ name: String) throws -> [Float] {
        var out = [Float](repeating: 0, count: source.info(name)!.count)
        try out.withUnsafeMutableBufferPointer { try source.readFloat32(name, into: $0) }
        return out
    }

    @Test("f32 keeps the layout it had before dtypes: every tensor back to back, 4 bytes a value")
    func f32Layout() throws {
        let config = try LlamaConfig.load(directory: HostileFixtures.source)
        let (offsets, total) = LlamaWeights.layout(config, dtype: .f32)
        var at = 0
        for (e, o) in zip(LlamaWeights.table(config), offsets) { #expect(o == at, "\(e.name)"); at += 4 * e.count }
        #expect(total == at)
        // bf16 and q8 halve and (about) quarter the matrices; norms stay f32
        let bf16 = LlamaWeights.layout(config, dtype: .bf16).total, q8 = LlamaWeights.layout(config, dtype: .q8).total
        #expect(bf16 < total / 2 + 4 * 1024 && q8 < total * 3 / 10, "\(total) \(bf16) \(q8)")
    }

    @Test("a GGUF's Q8_0 matrices read as q8 are the file's blocks (q and k rows in Hugging Face order): they decode to the F32 reader's values bit for bit")
    func ggufQ8Passthrough() throws {
        let dir = TemporaryDirectory("dtype-gguf")
        defer { dir.cleanup() }
        let gguf = try GGUFFile(path: try Self.ggufFile(dir, matrices: .q8_0))
        let source = try GGUFLlamaSource(file: gguf)
        var permuted = 0
        for t in source.tensorInfos where t.shape.count == 2 {
            #expect(t.dtype == .q8_0)
            let (q8, f32) = (try Self.decoded(source, t.name, .q8), try Self.float32(source, t.name))
            #expect(q8.map(\.bitPattern) == f32.map(\.bitPattern), "\(t.name)")
            // away from q and k, the bytes are the file's own
            if t.name.contains("q_proj") || t.name.contains("k_proj") { permuted += 1; continue }
            let raw = UnsafeMutableRawBufferPointer.allocate(byteCount: BaseDType.q8.bytes(rows: t.shape[0], cols: t.shape[1]), alignment: 2)
            defer { raw.deallocate() }
            try source.readEncoded(t.name, as: .q8, into: raw)
            let file = try gguf.rawBytes(Self.ggufName(t.name))
            #expect(Array(raw) == Array(file), "\(t.name)")
        }
        #expect(permuted == 4)
    }

    @Test("import --dtype q8 and bf16: the directory holds int8 + f16 scales or BF16, loads, and gives the values the in-memory encoding gives")
    func importDTypes() throws {
        let dir = TemporaryDirectory("dtype-import")
        defer { dir.cleanup() }
        let gguf = try Self.ggufFile(dir, matrices: .q8_0)
        let q8 = dir.file("q8"), bf16 = dir.file("bf16")
        _ = try ModelImport.run(source: gguf, out: q8, options: .init(dtype: .q8))
        _ = try ModelImport.run(source: HostileFixtures.writtenModelDirectory(dir), out: bf16, options: .init(dtype: .bf16))
        let source = try GGUFLlamaSource(file: GGUFFile(path: gguf))
        let q8Dir = try ModelDirectory(directory: q8), bf16Dir = try ModelDirectory(directory: bf16)
        #expect(q8Dir.heldDType == .q8 && bf16Dir.heldDType == .bf16)
        #expect(try ModelManifest.read(directory: q8)?.dtype == "q8")
        let header = try SafetensorsFile(path: q8 + "/model.safetensors")
        #expect(header.metadata["format"] == "pt")
        for t in source.tensorInfos where t.shape.count == 2 {
            // the q8 directory's blocks are the GGUF's (no re-quantizing)
            let (mine, theirs) = (try Self.decoded(q8Dir.checkpoint, t.name, .q8), try Self.decoded(source, t.name, .q8))
            let (mineF, theirsF) = (try Self.float32(q8Dir.checkpoint, t.name), try Self.float32(source, t.name))
            #expect(mine.map(\.bitPattern) == theirs.map(\.bitPattern) && mineF.map(\.bitPattern) == theirsF.map(\.bitPattern), "\(t.name)")
        }
        let f32Source = try SafetensorsCheckpoint(directory: HostileFixtures.source)
        for t in f32Source.tensorInfos where t.shape.count == 2 {
            let want = try Self.float32(f32Source, t.name).map { Float(bitPattern: UInt32(FrozenEncoding.bf16($0)) << 16) }
            let got = try Self.float32(bf16Dir.checkpoint, t.name)
            #expect(got.map(\.bitPattern) == want.map(\.bitPattern), "\(t.name)")
        }
        // the weights load in each dtype the directory can give; a q8 directory refuses bf16 by key and value
        let config = q8Dir.config
        let loaded = try LlamaWeights(config: config, source: q8Dir.checkpoint, dtype: .q8)
        let norm = try Self.float32(q8Dir.checkpoint, "model.norm.weight")
        #expect(loaded.qkv(0).dtype == .q8 && loaded.norm[0] == norm[0])
        #expect { try q8Dir.check(dtype: .bf16, key: "model.base_dtype") } throws: { e in
            "\(e)".contains("model.base_dtype = \"bf16\"") && "\(e)".contains(q8) && "\(e)".contains("q8")
        }
        try q8Dir.check(dtype: .q8, key: "model.base_dtype")
        try q8Dir.check(dtype: .f32, key: "model.base_dtype")
    }

    @Test("an I8 tensor without its f16 scales is refused, naming the file and the tensor")
    func int8WithoutScales() throws {
        let dir = TemporaryDirectory("dtype-i8")
        defer { dir.cleanup() }
        let path = dir.file("bad.safetensors")
        try SafetensorsWriter.writeBytes(path: path, tensors: [TensorInfo(name: "w", shape: [2, 32], dtype: .i8)]) { _, out in
            out.initializeMemory(as: UInt8.self, repeating: 1)
        }
        #expect { _ = try SafetensorsFile(path: path) } throws: { e in
            "\(e)".contains(path) && "\(e)".contains("'w'") && "\(e)".contains("w_scale")
        }
    }

    @Test("loading in bf16 or q8 equals converting the f32 weights; prepared copies equal private loads and refuse another dtype",
          arguments: [BaseDType.bf16, .q8])
    func preparedAndConverted(dtype: BaseDType) throws {
        let dir = TemporaryDirectory("dtype-prepared")
        defer { dir.cleanup() }
        let model = HostileFixtures.writtenModelDirectory(dir)
        let config = try LlamaConfig.load(directory: model), source = try SafetensorsCheckpoint(directory: model)
        let own = try LlamaWeights(config: config, source: source, dtype: dtype)
        let converted = try LlamaWeights(config: config, source: source).converted(to: dtype)
        #expect(Array(own.bytes) == Array(converted.bytes))
        #expect(own.bytes.count == LlamaWeights.layout(config, dtype: dtype).total)
        let path = PreparedWeights.path(cacheDirectory: dir.file("cache"), sourceSHA256: "ab12", dtype: dtype)
        #expect(path.hasSuffix("-\(dtype.rawValue).pilotw"))
        #expect(try PreparedWeights.prepare(path: path, config: config, source: source, sourceSHA256: "ab12", dtype: dtype) == "built")
        let shared = try PreparedWeights.map(path: path, config: config, sourceSHA256: "ab12", dtype: dtype)
        #expect(shared.isShared && shared.dtype == dtype && Array(shared.bytes) == Array(own.bytes))
        #expect { _ = try PreparedWeights.map(path: path, config: config, sourceSHA256: "ab12", dtype: .f32) } throws: { e in
            "\(e)".contains("dtype") && "\(e)".contains(dtype.rawValue) && "\(e)".contains(path)
        }
        // a merge needs the model's own f32 weights
        #expect(throws: PilotError.self) { try own.merge(LoRAAdapter(config: config, rank: 2, alpha: 4, targets: [.q]) { _, shape in [Float](repeating: 0.1, count: shape.reduce(1, *)) }) }
    }
}

/// The node's memory checked before a copy of the LM is made (#33 "Bad input"): the message has the
/// bytes needed and the bytes /proc/meminfo has available (PILOT_MEMINFO stands in for it here).
@Suite("memory check before the frozen LM is loaded")
struct MemoryCheckTests {
    @Test("too little MemAvailable: refused with both numbers and what to do; enough: nothing")
    func refusedWithBothNumbers() throws {
        let dir = TemporaryDirectory("meminfo")
        defer { dir.cleanup() }
        let fake = dir.file("meminfo")
        try "MemTotal:       2048 kB\nMemFree:         512 kB\nMemAvailable:    1024 kB\n".write(toFile: fake, atomically: true, encoding: .utf8)
        #expect(MemoryInfo.read(path: fake)! == (1024 * 1024, 2048 * 1024))
        #expect { try MemoryInfo.require(4 << 20, for: "the shared copy of the LM", fix: "use q8", meminfo: fake) } throws: { e in
            let m = "\(e)"
            return m.contains("the shared copy of the LM") && m.contains("(4194304 bytes)") && m.contains("(1048576 bytes) available") && m.contains("use q8")
        }
        try MemoryInfo.require(512 * 1024, for: "x", fix: "", meminfo: fake)
    }
}
