// Shape letters: N tokens, C model width, V vocabulary.

/// Token embedding lookup: out[n,:] = table[token[n],:].
public enum Embedding {
    @inlinable
    public static func forward(out: UnsafeMutablePointer<Float>, tokens: UnsafePointer<Int32>,
                               table: UnsafePointer<Float>, count: Int, width: Int, ldo: Int? = nil) {
        let ldo = ldo ?? width
        for n in 0..<count {
            (out + n * ldo).update(from: table + Int(tokens[n]) * width, count: width)
        }
    }

    /// dtable[token[n],:] += dout[n,:], in token order (fixed, so reproducible).
    @inlinable
    public static func backward(dtable: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>,
                                tokens: UnsafePointer<Int32>, count: Int, width: Int, lddo: Int? = nil) {
        let lddo = lddo ?? width
        for n in 0..<count {
            let d = dtable + Int(tokens[n]) * width, s = dout + n * lddo
            for c in 0..<width { d[c] += s[c] }
        }
    }
}
