import Foundation
import Testing
import PilotCore
import PilotLM

/// The pure block decoders: f16/bf16 exactly, Q8_0/Q4_0/Q4_1 by hand-built blocks and bit for bit
/// against gguf-py's `gguf.quants.dequantize` on the raw bytes of tiny_llama.gguf.
@Suite struct DequantizeTests {
    @Test func halfIsExactForAll65536Values() {
        var nan = 0
        for h in 0...0xffff {
            let got = Dequantize.half(UInt16(h))
            let hw = Float(Float16(bitPattern: UInt16(h)))
            if hw.isNaN {
                nan += 1
                // numpy keeps sign and payload, quiet or signalling: sign | 0x7f800000 | mantissa << 13.
                #expect(got.bitPattern == (UInt32(h & 0x8000) << 16) | 0x7f80_0000 | (UInt32(h & 0x3ff) << 13), "\(h)")
            } else {
                #expect(got.bitPattern == hw.bitPattern, "half \(String(h, radix: 16))")
            }
        }
        #expect(nan == 2046)
        #expect(Dequantize.half(0x0001) == Float(sign: .plus, exponent: -24, significand: 1))  // smallest subnormal
        #expect(Dequantize.half(0x7c00) == .infinity && Dequantize.half(0xfc00) == -.infinity)
        #expect(Dequantize.half(0x8000).bitPattern == 0x8000_0000)
    }

    @Test func bf16IsTheHighHalfOfAFloat() {
        let src: [UInt16] = [0x3f80, 0xbf80, 0x7f80, 0x0001, 0x7fc1, 0x8000]
        var out = [Float](repeating: 0, count: src.count)
        src.withUnsafeBytes { s in out.withUnsafeMutableBufferPointer { Dequantize.bf16(s, into: $0) } }
        #expect(out.map(\.bitPattern) == src.map { UInt32($0) << 16 })
    }

    /// One block: f16 scale(s) then the quants, as ggml lays it out.
    static func block(_ head: [UInt16], _ quants: [UInt8]) -> [UInt8] {
        head.flatMap { [UInt8($0 & 0xff), UInt8($0 >> 8)] } + quants
    }

    @Test func q8_0Block() throws {
        let q: [Int8] = (0..<32).map { Int8($0 * 8 - 128) }
        let bytes = Self.block([0x3800], q.map { UInt8(bitPattern: $0) })  // d = 0.5
        var out = [Float](repeating: 0, count: 32)
        try bytes.withUnsafeBytes { s in try out.withUnsafeMutableBufferPointer { try Dequantize.run(.q8_0, s, into: $0) } }
        let want: [Float] = q.map { (v: Int8) -> Float in Float(v) * 0.5 }
        #expect(out == want)
    }

    @Test func q4_0BlockLowNibblesFirst() throws {
        let nibbles: [UInt8] = (0..<16).map { UInt8($0) | UInt8(15 - $0) << 4 }
        let bytes = Self.block([0x4000], nibbles)  // d = 2
        var out = [Float](repeating: 0, count: 32)
        try bytes.withUnsafeBytes { s in try out.withUnsafeMutableBufferPointer { try Dequantize.run(.q4_0, s, into: $0) } }
        let low: [Float] = (0..<16).map { (i: Int) -> Float in Float(i - 8) * 2 }
        let high: [Float] = (0..<16).map { (i: Int) -> Float in Float(7 - i) * 2 }
        #expect(Array(out[0..<16]) == low)
        #expect(Array(out[16..<32]) == high)
    }

    @Test func q4_1Block() throws {
        let nibbles: [UInt8] = (0..<16).map { UInt8($0) | UInt8($0) << 4 }
        let bytes = Self.block([0x3400, 0xbc00], nibbles)  // d = 0.25, m = -1
        var out = [Float](repeating: 0, count: 32)
        try bytes.withUnsafeBytes { s in try out.withUnsafeMutableBufferPointer { try Dequantize.run(.q4_1, s, into: $0) } }
        let want: [Float] = (0..<32).map { (i: Int) -> Float in Float(i % 16) * 0.25 - 1 }
        #expect(out == want)
    }

    @Test func rowsMustBeWholeBlocks() {
        let bytes = [UInt8](repeating: 0, count: 18)
        var out = [Float](repeating: 0, count: 31)
        let text = thrownText { try bytes.withUnsafeBytes { s in try out.withUnsafeMutableBufferPointer { try Dequantize.run(.q4_0, s, into: $0, what: "w.gguf: tensor 'x'") } } }
        #expect(text?.contains("tensor 'x'") == true && text?.contains("32") == true, "\(text ?? "nil")")
        var out32 = [Float](repeating: 0, count: 32)
        let short = thrownText { try bytes.dropLast().withUnsafeBytes { s in try out32.withUnsafeMutableBufferPointer { try Dequantize.run(.q4_0, s, into: $0) } } }
        #expect(short?.contains("17") == true, "\(short ?? "nil")")
    }

    /// The block decoders on the raw bytes of each tiny_llama.gguf tensor, against gguf-py.
    @Test func rawBlocksMatchGGUFPyBitForBit() throws {
        let g = try GGUFFile(path: FormatFixtures.path("tiny_llama.gguf"))
        let gg = try #require(try FormatFixtures.json("tiny_llama_expected.json")["gguf"] as? [String: [String: Any]])
        for t in g.tensorInfos {
            var out = [Float](repeating: .nan, count: t.count)
            let raw = try g.rawBytes(t.name)
            try out.withUnsafeMutableBufferPointer { try Dequantize.run(t.dtype, raw, into: $0) }
            #expect(out.map(\.bitPattern) == FormatFixtures.u32s(gg[t.name]?["bits"]), "\(t.name) \(t.dtype)")
        }
    }
}
