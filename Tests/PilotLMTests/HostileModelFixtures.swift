import Foundation
import PilotCore
import PilotLM
import PilotTestSupport

/// Complete tiny model files made in Swift for the hostile-input tests (#34 item 1): the tiny GQA tied
/// Llama of Tests/Fixtures/lm/tiny-gqa-tied as a Hugging Face directory with a tokenizer, and the same
/// model as a GGUF with its tokenizer in the metadata, written by `GGUFBuilder`, which records where every
/// count, length, dimension and offset lies so that a test can edit exactly those.
enum HostileFixtures {
    static let source = LMFixtures.path("tiny-gqa-tied")
    static let chatTemplate = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"

    /// 256 ids (the tiny LM's vocabulary): 252 single-byte tokens in GPT-2's byte-to-unicode alphabet, no
    /// merges, then <|endoftext|>, <|im_start|>, <|im_end|>, <pad> (as PilotModelTests' tinyByteTokenizer).
    static let tokens: [String] = {
        var chars: [Int: Int] = [:]
        for b in Array(33...126) + Array(161...172) + Array(174...255) { chars[b] = b }
        var n = 0
        for b in 0..<256 where chars[b] == nil { chars[b] = 256 + n; n += 1 }
        return (0..<252).map { String(UnicodeScalar(UInt32(chars[$0]!))!) } + ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<pad>"]
    }()
    static let tokenTypes = [Int](repeating: 1, count: 252) + [3, 3, 3, 3]

    static func tokenizer() throws -> BPETokenizer {
        try BPETokenizer(ggufTokens: tokens, merges: [], tokenTypes: tokenTypes, preTokenizer: "gpt2",
                         bos: 253, eos: 254, unk: nil, pad: 255, addBOS: false, source: "test")
    }

    /// config.json and model.safetensors of tiny-gqa-tied, plus tokenizer.json and a ChatML tokenizer_config.json.
    static func writeModelDirectory(_ dir: String) throws {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        for f in ["config.json", "model.safetensors"] { try FileManager.default.copyItem(atPath: source + "/" + f, toPath: dir + "/" + f) }
        try tokenizer().tokenizerJSON().write(to: URL(fileURLWithPath: dir + "/tokenizer.json"))
        let tc = try JSONSerialization.data(withJSONObject: ["chat_template": chatTemplate])
        try tc.write(to: URL(fileURLWithPath: dir + "/tokenizer_config.json"))
    }

    /// `writeModelDirectory` into `dir`/model, returning its path.
    static func writtenModelDirectory(_ dir: TemporaryDirectory) -> String {
        let path = dir.file("model")
        try! writeModelDirectory(path)
        return path
    }

    /// The same model as a llama GGUF (version 3): metadata as llama.cpp's converter writes it, the tokenizer,
    /// the chat template; norms in F32, attention in F16, the MLP and the embedding in Q8_0.
    /// - Parameter matrices: every matrix in this type instead (norms stay F32).
    static func gguf(matrices: GGUFBuilder.TensorType? = nil) throws -> GGUFBuilder {
        let st = try SafetensorsFile(path: source + "/model.safetensors")
        var g = GGUFBuilder()
        g.metadata("general.architecture", .string("llama"))
        g.metadata("general.alignment", .uint(32))
        for (k, v) in [("llama.block_count", 2), ("llama.embedding_length", 64), ("llama.feed_forward_length", 128),
                       ("llama.context_length", 128), ("llama.attention.head_count", 4), ("llama.attention.head_count_kv", 2),
                       ("llama.vocab_size", 256), ("tokenizer.ggml.bos_token_id", 253), ("tokenizer.ggml.eos_token_id", 254),
                       ("tokenizer.ggml.padding_token_id", 255)] {
            g.metadata(k, .uint(UInt64(v)))
        }
        g.metadata("llama.attention.layer_norm_rms_epsilon", .float(1e-5))
        g.metadata("llama.rope.freq_base", .float(10000))
        g.metadata("tokenizer.ggml.model", .string("gpt2"))
        g.metadata("tokenizer.ggml.pre", .string("gpt2"))
        g.metadata("tokenizer.ggml.tokens", .strings(tokens))
        g.metadata("tokenizer.ggml.token_type", .ints(tokenTypes.map(Int64.init)))
        g.metadata("tokenizer.ggml.merges", .strings([]))
        g.metadata("tokenizer.ggml.add_bos_token", .bool(false))
        g.metadata("tokenizer.chat_template", .string(chatTemplate))
        let hf = Dictionary(uniqueKeysWithValues: GGUFLlamaSource.blockNames.map { ($1, $0) })
        for t in st.tensorInfos {
            var values = [Float](repeating: 0, count: t.count)
            try values.withUnsafeMutableBufferPointer { try st.readFloat32(t.name, into: $0) }
            let name: String
            if let top = GGUFLlamaSource.topNames.first(where: { $0.value == t.name })?.key { name = top } else {
                let p = t.name.split(separator: ".").map(String.init)  // model.layers.L.<kind...>.weight
                name = "blk.\(p[2]).\(hf[p[3...].dropLast().joined(separator: ".")]!).weight"
            }
            let type: GGUFBuilder.TensorType = t.shape.count == 1 ? .f32 : matrices ?? (name.contains("attn") ? .f16 : .q8_0)
            g.tensor(name, shape: t.shape, type: type, values: values)
        }
        return g
    }
}

/// Writes a GGUF file in memory (the layout `GGUFFile` reads) and records every size field's offset.
struct GGUFBuilder {
    enum TensorType: UInt32 { case f32 = 0, f16 = 1, q8_0 = 8 }
    /// A count, length, dimension, type or offset in the file: where, how wide, and what it is.
    struct Field { let offset: Int; let width: Int; let label: String }

    private var kv: [(String, GGUFValue)] = []
    private var tensors: [(name: String, shape: [Int], type: TensorType, data: [UInt8])] = []

    /// Adds `key`, or replaces its value where it is.
    mutating func metadata(_ key: String, _ value: GGUFValue) {
        if let i = kv.firstIndex(where: { $0.0 == key }) { kv[i].1 = value } else { kv.append((key, value)) }
    }
    mutating func rename(tensor old: String, to new: String) {
        if let i = tensors.firstIndex(where: { $0.name == old }) { tensors[i].name = new }
    }
    mutating func tensor(_ name: String, shape: [Int], type: TensorType, values: [Float]) {
        tensors.append((name, shape, type, Self.encode(values, type)))
    }

    static func encode(_ values: [Float], _ type: TensorType) -> [UInt8] {
        var out: [UInt8] = []
        func put<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { out += $0 } }
        switch type {
        case .f32: for v in values { put(v.bitPattern) }
        case .f16: for v in values { put(Float16(v).bitPattern) }
        case .q8_0:  // blocks of 32: an F16 scale d = max|x| / 127, then round(x / d) as int8
            for b in stride(from: 0, to: values.count, by: 32) {
                let block = values[b..<(b + 32)], d = (block.map(abs).max() ?? 0) / 127
                put(Float16(d).bitPattern)
                for v in block { out.append(UInt8(bitPattern: Int8(d == 0 ? 0 : (v / d).rounded()))) }
            }
        }
        return out
    }

    /// The file's bytes, its size fields, and where the data area starts.
    func build() -> (bytes: [UInt8], fields: [Field], dataStart: Int) {
        var out: [UInt8] = [], fields: [Field] = []
        func put<T: FixedWidthInteger>(_ v: T, _ label: String? = nil) {
            if let label { fields.append(Field(offset: out.count, width: MemoryLayout<T>.size, label: label)) }
            withUnsafeBytes(of: v.littleEndian) { out += $0 }
        }
        func string(_ s: String, _ label: String) { put(UInt64(s.utf8.count), "length of \(label)"); out += Array(s.utf8) }
        put(UInt32(0x4655_4747)); put(UInt32(3))
        put(UInt64(tensors.count), "tensor count"); put(UInt64(kv.count), "metadata count")
        for (key, value) in kv {
            string(key, "key \(key)")
            switch value {
            case let .uint(u) where u <= UInt64(UInt32.max): put(UInt32(4)); put(UInt32(u), "value of \(key)")
            case let .uint(u): put(UInt32(10)); put(u, "value of \(key)")
            case let .int(i): put(UInt32(5)); put(Int32(i), "value of \(key)")
            case let .float(f): put(UInt32(6)); put(Float(f).bitPattern)
            case let .bool(b): put(UInt32(7)); put(UInt8(b ? 1 : 0))
            case let .string(s): put(UInt32(8)); string(s, "the value of \(key)")
            case let .strings(a):
                put(UInt32(9)); put(UInt32(8)); put(UInt64(a.count), "element count of \(key)")
                for (i, s) in a.enumerated() { string(s, "\(key)[\(i)]") }
            case let .ints(a):
                put(UInt32(9)); put(UInt32(5)); put(UInt64(a.count), "element count of \(key)")
                for v in a { put(Int32(v)) }
            default: fatalError("GGUFBuilder writes no \(value)")
            }
        }
        var offset = 0, offsets: [Int] = []
        for t in tensors {
            string(t.name, "tensor name \(t.name)")
            put(UInt32(t.shape.count), "n_dims of \(t.name)")
            for (i, d) in t.shape.reversed().enumerated() { put(UInt64(d), "ne[\(i)] of \(t.name)") }
            put(t.type.rawValue, "type of \(t.name)")
            put(UInt64(offset), "offset of \(t.name)")
            offsets.append(offset)
            offset = (offset + t.data.count + 31) / 32 * 32
        }
        out += [UInt8](repeating: 0, count: (32 - out.count % 32) % 32)
        let dataStart = out.count
        for (t, o) in zip(tensors, offsets) {
            out += [UInt8](repeating: 0, count: dataStart + o - out.count)
            out += t.data
        }
        return (out, fields, dataStart)
    }
}
