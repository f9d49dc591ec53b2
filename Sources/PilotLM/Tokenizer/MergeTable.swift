/// The BPE merges interned as (left id, right id) -> (rank, merged id), in an open-addressing hash table
/// (linear probing on a power-of-two capacity), because the merge loop looks a pair up for every step.
struct MergeTable: Sendable {
    private var keys: [UInt64]
    private var ranks: [Int32]
    private var results: [Int32]
    private let mask: Int
    private static let empty = UInt64.max
    /// Number of merges.
    private(set) var count = 0

    init(capacity: Int) {
        var size = 16
        while size < capacity * 2 { size <<= 1 }
        keys = [UInt64](repeating: Self.empty, count: size)
        ranks = [Int32](repeating: 0, count: size)
        results = [Int32](repeating: 0, count: size)
        mask = size - 1
    }

    @inline(__always)
    private static func key(_ a: Int32, _ b: Int32) -> UInt64 { UInt64(UInt32(bitPattern: a)) << 32 | UInt64(UInt32(bitPattern: b)) }

    @inline(__always)
    private func slot(_ k: UInt64) -> Int { Int(truncatingIfNeeded: (k &* 0x9E37_79B9_7F4A_7C15) >> 32) & mask }

    /// Adds a merge; a repeated pair takes the later rank, as `tokenizers` does when it collects its map.
    mutating func insert(_ a: Int32, _ b: Int32, rank: Int32, result: Int32) {
        let k = Self.key(a, b)
        var s = slot(k)
        while keys[s] != Self.empty {
            if keys[s] == k { ranks[s] = rank; results[s] = result; return }
            s = (s + 1) & mask
        }
        keys[s] = k; ranks[s] = rank; results[s] = result
        count += 1
    }

    /// (rank, merged id) of the pair, or nil.
    @inline(__always)
    func lookup(_ a: Int32, _ b: Int32) -> (rank: Int32, result: Int32)? {
        let k = Self.key(a, b)
        var s = slot(k)
        while true {
            let found = keys[s]
            if found == k { return (ranks[s], results[s]) }
            if found == Self.empty { return nil }
            s = (s + 1) & mask
        }
    }
}
