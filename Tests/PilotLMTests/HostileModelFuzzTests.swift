import Foundation
import Testing
import PilotCore
@testable import PilotLM
import PilotTestSupport

/// #34 item 1: seeded random mutations of a tiny model (Hugging Face directory: config.json and
/// model.safetensors; a GGUF with its tokenizer; the quantized tiny_llama.gguf): truncations, bit flips in
/// the header/metadata and in the data, and edits of the size fields (config.json sizes, the safetensors
/// header length and its shapes/offsets, every GGUF count, length, dimension and offset). Each case must
/// load (a flipped bit in a weight is harmless) or throw a `PilotError`; never trap, never throw anything
/// else. An import that succeeds must leave a directory that loads; one that fails must leave nothing.
/// The cases run in this process (the caps and checks come before any allocation that scales with a
/// size), and every 8th also through the `pilot` binary held to 1 GiB of address space, which must agree
/// and end in exit 0 or pilot's own error. A crash prints the case (CrashNote).
@Suite("Hostile model files: seeded mutations give a PilotError or a model that loads, never a signal", .serialized)
struct HostileModelFuzzTests {
    /// PILOT_FUZZ_SEED explores other seeds; a failure names the seed, the case and the mutation.
    static var seed: UInt64 { ProcessInfo.processInfo.environment["PILOT_FUZZ_SEED"].flatMap { UInt64($0) } ?? 3401 }

    struct Dice {
        var rng: SplitMix64
        mutating func below(_ n: Int) -> Int { Int(rng.next() % UInt64(max(n, 1))) }
        mutating func pick<T>(_ a: [T]) -> T { a[below(a.count)] }
    }

    /// How one case ended.
    enum Outcome: Equatable { case loaded, refused, violation(String) }

    static func attempt(_ body: () throws -> Void) -> (Outcome, String) {
        do { try body(); return (.loaded, "") } catch let e as PilotError { return (.refused, e.description) } catch {
            return (.violation("threw \(type(of: error)), not a PilotError: \(error)"), "")
        }
    }

    // MARK: mutations

    static func truncate(_ b: [UInt8], _ d: inout Dice) -> ([UInt8], String) {
        let cut = d.below(b.count)
        return (Array(b[0..<cut]), "truncated to \(cut) of \(b.count) bytes")
    }

    static func flip(_ b: [UInt8], _ d: inout Dice, in range: Range<Int>, _ what: String) -> ([UInt8], String) {
        var out = b, bits: [Int] = []
        for _ in 0...d.below(8) {
            let bit = range.lowerBound * 8 + d.below(range.count * 8)
            out[bit / 8] ^= UInt8(1 << (bit % 8))
            bits.append(bit)
        }
        return (out, "bits \(bits) flipped (\(what))")
    }

    /// A hostile value for a size field that holds `orig`.
    static func hostile(_ orig: UInt64, fileSize: Int, _ d: inout Dice) -> UInt64 {
        let r = d.rng.next()
        return d.pick([0, 1, orig &+ 1, orig &- 1, orig &* 2, orig / 2, 1 << 31, 1 << 32 - 1, 1 << 40, 1 << 62, 1 << 63,
                       UInt64.max, UInt64(fileSize), UInt64(fileSize) + 1, r])
    }

    static func put(_ v: UInt64, width: Int, into b: inout [UInt8], at offset: Int) {
        for i in 0..<width { b[offset + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(i))) }
    }

    static func get(width: Int, _ b: [UInt8], at offset: Int) -> UInt64 {
        (0..<width).reduce(UInt64(0)) { $0 | UInt64(b[offset + $1]) << (8 * UInt64($1)) }
    }

    /// model.safetensors: truncation, bit flips in the header or the data, the header length, or a number
    /// of the JSON header (a shape or an offset) replaced, usually with the length prefix kept consistent.
    static func mutateSafetensors(_ b: [UInt8], _ d: inout Dice, kind: Int) -> ([UInt8], String) {
        let n = Int(getLE(UInt64.self, b, at: 0))
        switch kind {
        case 0: return truncate(b, &d)
        case 1: return flip(b, &d, in: 0..<(8 + n), "header")
        case 2: return flip(b, &d, in: (8 + n)..<b.count, "data")
        case 3:
            var out = b
            let v = hostile(UInt64(n), fileSize: b.count, &d)
            put(v, width: 8, into: &out, at: 0)
            return (out, "header length \(n) → \(v)")
        default:
            let header = Array(b[8..<(8 + n)])
            var runs: [Range<Int>] = [], i = 0
            while i < header.count {
                guard (48...57).contains(header[i]) else { i += 1; continue }
                let s = i
                while i < header.count, (48...57).contains(header[i]) { i += 1 }
                runs.append(s..<i)
            }
            let r = d.pick(runs), orig = Int(String(decoding: header[r], as: UTF8.self)) ?? 0
            let repl = d.pick(["0", "-1", "1", "\(orig + 1)", "\(orig - 1)", "\(orig * 2)", "4294967296", "1099511627776",
                               "9223372036854775807", "99999999999999999999999", "1e30", "-1e30", "2.5", "null", "\"7\""])
            let edited = Array(header[..<r.lowerBound]) + Array(repl.utf8) + Array(header[r.upperBound...])
            let keep = d.below(4) != 0
            var out = [UInt8](repeating: 0, count: 8)
            put(UInt64(keep ? edited.count : n), width: 8, into: &out, at: 0)
            return (out + edited + b[(8 + n)...], "header number '\(String(decoding: header[r], as: UTF8.self))' at \(8 + r.lowerBound) → '\(repl)'\(keep ? "" : ", length prefix left at \(n)")")
        }
    }

    static let configKeys = ["hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
                             "head_dim", "vocab_size", "max_position_embeddings", "rms_norm_eps", "rope_parameters",
                             "bos_token_id", "eos_token_id", "pad_token_id", "tie_word_embeddings"]

    /// config.json: one or two size keys set to huge, zero, negative, mismatched or mistyped values (or
    /// removed), or the file's bytes truncated or flipped.
    static func mutateConfig(_ b: [UInt8], _ d: inout Dice, kind: Int) throws -> ([UInt8], String) {
        switch kind {
        case 0: return truncate(b, &d)
        case 1: return flip(b, &d, in: 0..<b.count, "config.json")
        default:
            let clean = try #require(try JSONSerialization.jsonObject(with: Data(b)) as? [String: Any])
            var c = clean, what: [String] = []
            for _ in 0...d.below(2) {
                let k = d.pick(configKeys), orig = (clean[k] as? Int) ?? 0
                let values: [Any?] = [0, -1, 1, 2, orig + 1, orig - 1, orig * 2, orig / 2, 1 << 24, (1 << 24) + 1, 1 << 31,
                                      1 << 40, Int.max, Int.min, 1e300, 0.5, "64", NSNull(), nil, true, [1, 2]]
                let v = values[d.below(values.count)]
                if let v { c[k] = v } else { c.removeValue(forKey: k) }
                what.append("\(k) = \(v.map { "\($0)" } ?? "(removed)")")
            }
            return ([UInt8](try JSONSerialization.data(withJSONObject: c)), "config.json " + what.joined(separator: ", "))
        }
    }

    /// A GGUF: truncation, bit flips before or in the data area, or one size field (`fields`: counts,
    /// lengths, dimensions, types, offsets) set to a hostile value; without `fields`, 8 bytes at a random
    /// offset of the header.
    static func mutateGGUF(_ b: [UInt8], fields: [GGUFBuilder.Field]?, dataStart: Int, _ d: inout Dice, kind: Int) -> ([UInt8], String) {
        switch kind {
        case 0: return truncate(b, &d)
        case 1: return flip(b, &d, in: 0..<dataStart, "header, metadata and tensor infos")
        case 2: return flip(b, &d, in: dataStart..<b.count, "data")
        default:
            var out = b
            if let fields {
                let f = d.pick(fields)
                let v = hostile(get(width: f.width, b, at: f.offset), fileSize: b.count, &d)
                put(v, width: f.width, into: &out, at: f.offset)
                return (out, "\(f.label) at \(f.offset) → \(v & (f.width == 8 ? UInt64.max : (1 << (8 * UInt64(f.width))) - 1))")
            }
            let at = 8 + d.below(dataStart - 16)
            let v = hostile(get(width: 8, b, at: at), fileSize: b.count, &d)
            put(v, width: 8, into: &out, at: at)
            return (out, "8 bytes at \(at) → \(v)")
        }
    }

    // MARK: the run

    struct Tally { var loaded = 0, refused = 0, imported = 0, limited = 0 }

    @Test("seeded truncations, bit flips and size edits of safetensors, config.json and GGUF")
    func fuzz() throws {
        try #require(FileManager.default.isExecutableFile(atPath: pilotBinary), "no pilot binary at \(pilotBinary): build it (swift build -c release) or set PILOT_BIN")
        let tmp = TemporaryDirectory("hostile-fuzz"); defer { tmp.cleanup() }
        let seed = Self.seed
        var d = Dice(rng: SplitMix64(seed: seed))
        let start = Date()
        var tallies: [String: Tally] = [:]
        var violations: [String] = []
        CrashNote.install(); defer { CrashNote.uninstall() }

        /// One case: `load` in this process; with `importFrom`, `ModelImport.run` too; every 8th case also
        /// the `pilot` command (`model info --model DIR`, or `model import FILE` when `cliImports`) under
        /// `ulimit -v` 1 GiB, which must agree with the in-process outcome and end in exit 0 or pilot's error.
        func run(_ family: String, _ index: Int, _ mutation: String, load: () throws -> Void,
                 importFrom source: String? = nil, cli: [String], cliImports: Bool = false) throws {
            let label = "seed \(seed), \(family) case \(index): \(mutation)"
            CrashNote.set(label)
            let (outcome, message) = Self.attempt(load)
            if case let .violation(v) = outcome { violations.append("\(label): \(v)") }
            if outcome == .loaded { tallies[family, default: Tally()].loaded += 1 }
            if outcome == .refused {
                tallies[family, default: Tally()].refused += 1
                if message.isEmpty { violations.append("\(label): an empty error") }
            }
            var importOutcome = Outcome.refused
            if let source {
                let out = tmp.file("out-\(family)-\(index)")
                (importOutcome, _) = Self.attempt { _ = try ModelImport.run(source: source, out: out) }
                switch importOutcome {
                case .loaded:
                    tallies[family, default: Tally()].imported += 1
                    if outcome != .loaded { violations.append("\(label): the import succeeded but loading the source failed: \(message)") }
                    let (again, why) = Self.attempt { _ = try PretrainedLM(directory: out) }
                    if again != .loaded { violations.append("\(label): the import succeeded but its output does not load: \(why) \(again)") }
                    try? FileManager.default.removeItem(atPath: out)
                case .refused:
                    if FileManager.default.fileExists(atPath: out) { violations.append("\(label): a failed import left \(out)") }
                case let .violation(v): violations.append("\(label): import \(v)")
                }
            }
            if index % 8 == 0 || family == "clean" {
                tallies[family, default: Tally()].limited += 1
                let r = try HostileModelLimitTests.limited(cli)
                let expectOK = cliImports ? importOutcome == .loaded : outcome == .loaded
                if r.status != (expectOK ? 0 : 1) || (!expectOK && !r.stderr.contains("pilot: error: in `pilot model")) {
                    violations.append("\(label): `pilot \(cli.joined(separator: " "))` under ulimit -v 1 GiB exited \(r.status) (expected \(expectOK ? 0 : 1)): \(r.stderr.suffix(300))")
                }
                try? FileManager.default.removeItem(atPath: tmp.file("cli-out"))
            }
            let left = ((try? FileManager.default.contentsOfDirectory(atPath: tmp.path)) ?? []).filter { $0.contains(".tmp-") }
            if !left.isEmpty { violations.append("\(label): the import left \(left)") }
        }

        // A Hugging Face directory: model.safetensors and config.json mutated in place, restored after each case.
        let dir = tmp.file("hf")
        try HostileFixtures.writeModelDirectory(dir)
        func bytes(_ path: String) throws -> [UInt8] { [UInt8](try Data(contentsOf: URL(fileURLWithPath: path))) }
        let st = try bytes(dir + "/model.safetensors"), cfg = try bytes(dir + "/config.json")
        let info = ["model", "info", "--model", dir]
        try run("clean", 0, "none", load: { _ = try PretrainedLM(directory: dir) }, importFrom: dir, cli: info)
        for i in 0..<250 {
            let (bytes, what) = Self.mutateSafetensors(st, &d, kind: i % 5)
            try write(bytes, to: dir + "/model.safetensors")
            try run("safetensors", i, what, load: { _ = try PretrainedLM(directory: dir) }, importFrom: i % 3 == 0 ? dir : nil, cli: info)
        }
        try write(st, to: dir + "/model.safetensors")
        for i in 0..<250 {
            let (bytes, what) = try Self.mutateConfig(cfg, &d, kind: i % 5)
            try write(bytes, to: dir + "/config.json")
            try run("config", i, what, load: { _ = try PretrainedLM(directory: dir) }, importFrom: i % 3 == 0 ? dir : nil, cli: info)
        }
        try write(cfg, to: dir + "/config.json")

        // The same model as a GGUF with its tokenizer: loaded and imported.
        let (gguf, fields, dataStart) = try HostileFixtures.gguf().build()
        let ggufPath = tmp.file("tiny.gguf")
        let importGGUF = ["model", "import", ggufPath, "--out", tmp.file("cli-out")]
        try write(gguf, to: ggufPath)
        try run("clean", 1, "none", load: { _ = try LlamaWeights.load(gguf: ggufPath) }, importFrom: ggufPath, cli: importGGUF, cliImports: true)
        for i in 0..<250 {
            let (bytes, what) = Self.mutateGGUF(gguf, fields: fields, dataStart: dataStart, &d, kind: i % 4 == 3 || i % 8 == 1 ? 3 : i % 4)
            try write(bytes, to: ggufPath)
            try run("gguf", i, what, load: { _ = try LlamaWeights.load(gguf: ggufPath) }, importFrom: ggufPath, cli: importGGUF, cliImports: true)
        }

        // tiny_llama.gguf: every tensor type pilot reads (F32, F16, BF16, Q8_0, Q4_0, Q4_1), but not a whole
        // model (a format fixture): parsed, its config derived, and every tensor read through the llama view.
        let quant = try FormatFixtures.bytes("tiny_llama.gguf")
        let quantStart = try GGUFFile(path: FormatFixtures.path("tiny_llama.gguf")).dataStart
        let quantPath = tmp.file("quant.gguf")
        let importQuant = ["model", "import", quantPath, "--out", tmp.file("cli-out")]
        func readAll() throws {
            let src = try GGUFLlamaSource(file: GGUFFile(path: quantPath))
            _ = try src.huggingFaceConfigJSON()
            for t in src.tensorInfos {
                var buf = [Float](repeating: 0, count: t.count)
                try buf.withUnsafeMutableBufferPointer { try src.readFloat32(t.name, into: $0) }
            }
        }
        try write(quant, to: quantPath)
        try run("clean", 2, "none", load: readAll, cli: importQuant, cliImports: true)
        for i in 0..<120 {
            let (bytes, what) = Self.mutateGGUF(quant, fields: nil, dataStart: quantStart, &d, kind: i % 4)
            try write(bytes, to: quantPath)
            try run("quantized gguf", i, what, load: readAll, importFrom: quantPath, cli: importQuant, cliImports: true)
        }

        let seconds = Date().timeIntervalSince(start)
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        let peakMB = Double(usage.ru_maxrss) / 1024
        let summary = tallies.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value.loaded) loaded, \($0.value.refused) refused, \($0.value.imported) imported, \($0.value.limited) run by pilot under the limit" }
        // The peak RSS is the whole test process's, with whatever other suites run beside this one; the
        // bound this test asserts is the 1 GiB ulimit of the `pilot` runs.
        print("hostile fuzz, seed \(seed): \(summary.joined(separator: "; ")); \(String(format: "%.1f", seconds)) s, peak RSS of the test process \(String(format: "%.0f", peakMB)) MB")
        for v in violations.prefix(20) { Issue.record(Comment(rawValue: v)) }
        #expect(violations.isEmpty, "\(violations.count) violations (seed \(seed))")
        #expect(tallies["clean"]?.loaded == 3 && tallies["clean"]?.imported == 2, "the unmutated files must load and import")
        for family in ["safetensors", "config", "gguf", "quantized gguf"] {
            #expect((tallies[family]?.refused ?? 0) > 0 && (tallies[family]?.loaded ?? 0) > 0, "\(family): the mutations should both bite and miss")
        }
        #expect(seconds < 120, "\(seconds) s")
    }
}
