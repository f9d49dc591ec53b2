/// GPT-2's reversible map from bytes to printable Unicode scalars, so that every byte sequence is a string of
/// vocabulary characters: printable Latin-1 bytes map to themselves, the other 68 bytes to U+0100 onwards.
/// Same table as Hugging Face `tokenizers`' `bytes_char` and OpenAI's `bytes_to_unicode`.
enum ByteLevel {
    /// The scalar standing for each byte.
    static let scalarOfByte: [Unicode.Scalar] = {
        var table = [Unicode.Scalar](repeating: " ", count: 256)
        var next: UInt32 = 256
        for b in 0..<256 {
            let printable = (33...126).contains(b) || (161...172).contains(b) || (174...255).contains(b)
            if printable {
                table[b] = Unicode.Scalar(UInt8(b))
            } else {
                table[b] = Unicode.Scalar(next) ?? " "
                next += 1
            }
        }
        return table
    }()

    /// The byte each table scalar stands for (inverse of `scalarOfByte`).
    static let byteOfScalar: [UInt32: UInt8] = {
        var map: [UInt32: UInt8] = [:]
        for (b, s) in scalarOfByte.enumerated() { map[s.value] = UInt8(b) }
        return map
    }()

    /// The vocabulary string of raw bytes (what a byte-level BPE vocabulary stores).
    static func encode<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
        var s = String.UnicodeScalarView()
        for b in bytes { s.append(scalarOfByte[Int(b)]) }
        return String(s)
    }

    /// The bytes of a vocabulary token, as the `ByteLevel` decoder reads them: a token with a character
    /// outside the table (an added token such as `<|im_start|>` never has one) contributes its own UTF-8.
    static func decode(_ token: String, into out: inout [UInt8]) {
        let start = out.count
        for s in token.unicodeScalars {
            guard let b = byteOfScalar[s.value] else {
                out.removeSubrange(start...)
                out.append(contentsOf: token.utf8)
                return
            }
            out.append(b)
        }
    }
}
