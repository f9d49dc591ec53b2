import PilotComm
import PilotCore
import PilotTensor

/// ATA (Eq. 11–12) without gathering every client's LoRA on the server (issue #36, docs/performance.md
/// "ATA across ranks"). The client ranks keep their clients' vectors; the server holds K² distances and
/// the mixing matrix, never K·P values.
///
/// 1. Distances, by column blocks of `block` values: each client rank sends its clients' slice of the
///    block to every other client rank (one alltoallv per block), and computes the squared distances of
///    its own clients to half of the others, cyclically (client i to i + 1 … i + ⌊K/2⌋ mod K, the pair
///    at exactly K/2 once, by the lower index), so that every pair is computed once and the work is
///    spread evenly. Each block's ‖x_i − x_j‖² comes from one fixed-order kernel (`SquaredDistances`,
///    symmetric in i and j) and the blocks are added in Double in block order: the result depends on
///    K, P and `block`, not on the world size or the placement. Differences are squared directly, so
///    no cancellation needs the exact fallback of `Aggregate.pairwiseDistances`.
/// 2. The server gathers the squared distances (K·⌊K/2⌋ doubles), builds the mixing matrix with
///    `Aggregate.ataMixingMatrix`, and broadcasts its nonzeros (M + 1 per row for top-M).
/// 3. Mixing, by the same column blocks: each client rank receives, per block, the slices of the
///    neighbours its clients need from the ranks that hold them (one alltoallv per block), and mixes in
///    the order of `Aggregate.mix` (ascending neighbour index, Double accumulation, one rounding to
///    Float): given the same matrix, the same bits as `Aggregate.mix`.
///
/// The distances differ in their last bits from `Aggregate.pairwiseDistances` (one sgemm of the whole
/// [K, P] matrix), so a run's bits would change; the round still uses the gathering path.
public enum DistributedATA {
    /// Columns per block: a block of K rows is K·block floats on each client rank (64 MiB for K = 1,024).
    public static let defaultBlock = 2_048
    /// Own clients computed together against each other client's slice of a block.
    static let tile = 16

    public struct Result {
        /// Row i: client i's (neighbour, coefficient) pairs in ascending neighbour order (every rank).
        public var neighbours: [[(client: Int, weight: Double)]]
        /// Seconds of the three phases on this rank: distances, matrix (gather, build, broadcast), mixing.
        public var seconds: (distances: Double, matrix: Double, mixing: Double)
    }

    /// Collective over `world`. `owned[r]` is the range of clients world rank r holds (empty for the
    /// server, rank 0); `mine` holds this rank's clients' vectors of `length` values, in client order,
    /// and is replaced by their mixed vectors. `samples` and `tasks` cover all K clients.
    public static func run(world: any Communicator, owned: [Range<Int>], mine: inout [[Float]], length p: Int,
                           samples: [Int], tasks: [Int], selection: ATASelection, m: Int, normalisation: ATANormalisation,
                           block: Int = defaultBlock, kernel: GEMVKernel = .best) throws -> Result {
        let k = samples.count
        guard owned.count == world.size, owned.last?.upperBound == k, mine.count == owned[world.rank].count else {
            throw PilotError.invalidArgument("DistributedATA: \(owned.count) rank ranges for a world of \(world.size), \(mine.count) vectors on rank \(world.rank) for \(owned[min(world.rank, owned.count - 1)].count) clients, \(k) clients in all")
        }
        if let bad = mine.firstIndex(where: { $0.count != p }) {
            throw PilotError.invalidArgument("DistributedATA: client \(owned[world.rank].lowerBound + bad) has \(mine[bad].count) LoRA values, expected \(p)")
        }
        guard block >= 1 else { throw PilotError.invalidArgument("DistributedATA: block of \(block) columns") }
        let owner = (0..<k).map { c in owned.firstIndex { $0.contains(c) }! }
        let clock = Clock()
        let mineRange = owned[world.rank]
        // d2[slot][n]: client (mineRange.lowerBound + slot) to the n-th client of its half
        var d2 = mineRange.map { [Double](repeating: 0, count: Self.half(of: $0, clients: k).count) }
        var y = [Float](repeating: 0, count: 1)
        var start = 0
        while start < p {
            let len = min(block, p - start)
            let rows = try exchangeBlock(world: world, owned: owned, mine: mine, start: start, len: len)
            // tiles of `tile` own clients share each other client's slice while it is in cache
            var t0 = mineRange.lowerBound
            while t0 < mineRange.upperBound {
                let t1 = min(t0 + Self.tile, mineRange.upperBound)
                for j in 0..<k {
                    try rows.withRow(j, owner: owner[j]) { b in
                        for i in t0..<t1 {
                            guard let n = Self.halfIndex(of: j, from: i, clients: k) else { continue }
                            mine[i - mineRange.lowerBound].withUnsafeBufferPointer { a in
                                SquaredDistances.rows(b, a.baseAddress! + start, into: &y, rows: 1, cols: len, kernel: kernel)
                            }
                            d2[i - mineRange.lowerBound][n] += Double(y[0])
                        }
                    }
                }
                t0 = t1
            }
            start += len
        }
        let tDistances = clock.lap()
        let neighbours = try mixingMatrix(world: world, d2: d2.flatMap { $0 }, owned: owned, samples: samples,
                                          tasks: tasks, selection: selection, m: m, normalisation: normalisation)
        let tMatrix = clock.lap()
        try mix(world: world, owned: owned, owner: owner, mine: &mine, length: p, neighbours: neighbours, block: block)
        return Result(neighbours: neighbours, seconds: (tDistances, tMatrix, clock.lap()))
    }

    /// The clients whose distance to client i the owner of i computes: i + 1 … i + ⌊K/2⌋ (mod K), the
    /// one at exactly K/2 (even K) only when it is above i.
    static func half(of i: Int, clients k: Int) -> [Int] {
        (1...max(1, k / 2)).compactMap { s -> Int? in
            guard k > 1 else { return nil }
            let j = (i + s) % k
            if 2 * s == k && j < i { return nil }
            return j == i ? nil : j
        }
    }

    /// The position of j in client i's half (`half(of:)`), or nil when the pair is computed by j's owner.
    static func halfIndex(of j: Int, from i: Int, clients k: Int) -> Int? {
        let s = (j - i + k) % k
        guard s >= 1, s <= k / 2 else { return nil }
        if 2 * s == k && j < i { return nil }
        return s - 1
    }
}
