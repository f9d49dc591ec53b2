/// The character classes the pre-tokenizer patterns test, as bit flags per Unicode scalar:
/// `\p{L}` (general category L*), `\p{N}` (N*, also Rust's `char::is_numeric` used by `Digits`) and
/// `\s` (the White_Space property, which is Oniguruma's `\s` and Rust's `char::is_whitespace`).
enum ScalarClass {
    static let letter: UInt8 = 1, number: UInt8 = 2, space: UInt8 = 4, alphabetic: UInt8 = 8

    static let ascii: [UInt8] = (0..<128).map { compute(UInt32($0)) }

    @inline(__always)
    static func of(_ value: UInt32) -> UInt8 { value < 128 ? ascii[Int(value)] : compute(value) }

    static func compute(_ value: UInt32) -> UInt8 {
        guard let s = Unicode.Scalar(value) else { return 0 }
        let p = s.properties
        var c: UInt8 = 0
        switch p.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: c |= letter
        case .decimalNumber, .letterNumber, .otherNumber: c |= number
        default: break
        }
        if p.isWhitespace { c |= space }
        if p.isAlphabetic { c |= alphabetic }
        return c
    }
}
