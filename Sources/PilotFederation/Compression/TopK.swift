import PilotCore

/// `UpdateCodec.topk`: the k values of largest magnitude, the rest zero. Ties in magnitude go to the
/// lower index, so the choice is a pure function of the values; a NaN counts as larger than any
/// number (it is sent, and the server rejects the update). Layout: k (UInt32), the k indices in
/// increasing order (UInt32), their values (Float32).
enum TopK {
    /// The indices of the `keep` largest |x|, in increasing order.
    static func select(_ x: [Float], keep: Int) -> [Int] {
        guard keep < x.count else { return Array(x.indices) }
        func key(_ i: Int) -> Float { x[i].isNaN ? .infinity : abs(x[i]) }
        let order = x.indices.sorted { a, b in
            let ka = key(a), kb = key(b)
            return ka != kb ? ka > kb : a < b
        }
        return order.prefix(keep).sorted()
    }

    static func encode(_ x: [Float], keep: Int, into out: inout ByteWriter) {
        let kept = select(x, keep: keep)
        out.put(UInt32(kept.count))
        for i in kept { out.put(UInt32(i)) }
        for i in kept { out.put(x[i]) }
    }

    static func decode(_ r: inout ByteReader, count n: Int) throws -> [Float] {
        let k = Int(r.uint32())
        let indices = (0..<k).map { _ in Int(r.uint32()) }
        var out = [Float](repeating: 0, count: n)
        var last = -1
        for i in indices {
            guard i > last, i < n else { throw PilotError.message("exchange: a top-k index \(i) out of order or beyond \(n) values") }
            out[i] = r.float(); last = i
        }
        return out
    }
}
