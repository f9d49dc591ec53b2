import PilotTensor
import PilotTestSupport
import Testing

@Suite("sgemm wrapper")
struct GEMMTests {
    struct Case: Sendable, CustomStringConvertible {
        let transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float, beta: Float
        var description: String { "tA=\(transA) tB=\(transB) \(m)x\(n)x\(k) α=\(alpha) β=\(beta)" }
    }

    static let cases: [Case] = {
        var out: [Case] = []
        for tA in [false, true] { for tB in [false, true] {
            out.append(Case(transA: tA, transB: tB, m: 5, n: 7, k: 3, alpha: 1, beta: 0))
            out.append(Case(transA: tA, transB: tB, m: 33, n: 17, k: 65, alpha: -0.5, beta: 0.25))
            out.append(Case(transA: tA, transB: tB, m: 1, n: 64, k: 256, alpha: 2, beta: 1))
        } }
        return out
    }()

    @Test("matches the naive reference for both transposes, alpha and beta", arguments: cases)
    func matchesReference(c: Case) {
        var rng = SplitMix(seed: UInt64(c.m * 1000 + c.n * 10 + c.k))
        let a = (0..<(c.m * c.k)).map { _ in rng.nextFloat() }
        let b = (0..<(c.k * c.n)).map { _ in rng.nextFloat() }
        let c0 = (0..<(c.m * c.n)).map { _ in rng.nextFloat() }
        var expected = c0
        referenceGEMM(transA: c.transA, transB: c.transB, m: c.m, n: c.n, k: c.k, alpha: c.alpha, a: a, b: b, beta: c.beta, c: &expected)
        var got = c0
        a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in got.withUnsafeMutableBufferPointer { pc in
            sgemm(transA: c.transA, transB: c.transB, m: c.m, n: c.n, k: c.k, alpha: c.alpha,
                  a: pa.baseAddress!, b: pb.baseAddress!, beta: c.beta, c: pc.baseAddress!)
        } } }
        #expect(allClose(got, expected, rtol: 1e-5, atol: 1e-5), "max diff \(maxAbsDiff(got, expected))")
    }

    @Test("the reference is itself right on a hand-computed product")
    func referenceByHand() {
        // [1 2; 3 4] · [5 6; 7 8] = [19 22; 43 50]; with Aᵀ: [1 3; 2 4]·B = [26 30; 38 44]
        var c: [Float] = [0, 0, 0, 0]
        referenceGEMM(m: 2, n: 2, k: 2, a: [1, 2, 3, 4], b: [5, 6, 7, 8], c: &c)
        #expect(c == [19, 22, 43, 50])
        referenceGEMM(transA: true, m: 2, n: 2, k: 2, a: [1, 2, 3, 4], b: [5, 6, 7, 8], c: &c)
        #expect(c == [26, 30, 38, 44])
        // A·Bᵀ = [1 2; 3 4]·[5 7; 6 8] = [17 23; 39 53], added to the previous C (beta = 1).
        referenceGEMM(transB: true, m: 2, n: 2, k: 2, alpha: 1, a: [1, 2, 3, 4], b: [5, 6, 7, 8], beta: 1, c: &c)
        let expected: [Float] = [43, 53, 77, 97]
        #expect(c == expected)
    }

    @Test("Tensor.matmul on views of one storage")
    func tensorMatmul() {
        let storage = TensorStorage(count: 4 + 4 + 4)
        let a = Tensor(view: storage, offset: 0, shape: [2, 2])
        let b = Tensor(view: storage, offset: 4, shape: [2, 2])
        let c = Tensor(view: storage, offset: 8, shape: [2, 2])
        for (i, v) in [1, 2, 3, 4, 5, 6, 7, 8].enumerated() { storage.base[i] = Float(v) }
        Tensor.matmul(a, b, into: c)
        #expect(c.values == [19, 22, 43, 50])
        Tensor.matmul(a, transA: true, b, transB: true, into: c, alpha: 1, beta: 1)
        // Aᵀ·Bᵀ = [1 3; 2 4]·[5 7; 6 8] = [23 31; 34 46]
        let expected: [Float] = [42, 53, 77, 96]
        #expect(c.values == expected)
        #expect(c.reshaped([4]).shape == [4])
        #expect(Tensor(shape: [3, 5]).count == 15)
        #expect(Int(bitPattern: storage.base) % 64 == 0)
    }
}

struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E3779B97F4A7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58476D1CE4E5B9
        z = (z ^ (z >> 27)) &* 0x94D049BB133111EB
        return z ^ (z >> 31)
    }
    mutating func nextFloat() -> Float { Float(next() >> 40) / Float(1 << 24) * 2 - 1 }
}
