import Foundation
import PilotTensor
import PilotTestSupport
import Testing

@Suite("vectorised exp and the split sgemm")
struct VectorMathTests {
    @Test("VectorMath.exp is within 3 ulp of Foundation.exp over [-87, 88]")
    func expAccuracy() {
        var worst: Float = 0, worstAt: Float = 0
        var x: Float = -87
        while x <= 88 {
            let v = Float8((0..<8).map { x + Float($0) * 0.0013 })
            let e = VectorMath.exp(v)
            for j in 0..<8 where v[j] <= 88 {
                let ref = Float(Foundation.exp(Double(v[j])))
                let err = abs(e[j] - ref) / ref.ulp
                if err > worst { worst = err; worstAt = v[j] }
            }
            x += 0.0173
        }
        #expect(worst <= 3, "worst error \(worst) ulp at \(worstAt)")
        #expect(VectorMath.exp(Float(-1000)) > 0 && VectorMath.exp(Float(1000)).isFinite)
    }

    @Test("expShifted returns the sum and writes every element, tails included")
    func expShifted() {
        for n in [1, 7, 8, 13, 64] {
            let x = (0..<n).map { Float($0) * 0.37 - 2 }
            var y = [Float](repeating: -1, count: n)
            let s = x.withUnsafeBufferPointer { xb in
                y.withUnsafeMutableBufferPointer { VectorMath.expShifted(xb.baseAddress!, into: $0.baseAddress!, count: n, shift: 0.5) }
            }
            let ref = x.map { Foundation.exp(Double($0) - 0.5) }
            for i in 0..<n { #expect(abs(Double(y[i]) - ref[i]) <= 1e-6 * ref[i]) }
            #expect(abs(Double(s) - ref.reduce(0, +)) <= 1e-5 * ref.reduce(0, +))
        }
    }

    @Test("sgemm split across two engine threads matches the reference and is reproducible")
    func splitGEMM() {
        engineThreadsLock.lock(); defer { engineThreadsLock.unlock() }
        Parallel.configure(threads: 2)
        defer { Parallel.configure(threads: 1) }
        for (tA, tB, m, n, k) in [(false, false, 200, 96, 130), (true, false, 40, 300, 200), (false, true, 129, 130, 140), (true, true, 96, 97, 260)] {
            let a = (0..<(m * k)).map { Float(($0 * 7) % 13) * 0.1 - 0.6 }
            let b = (0..<(k * n)).map { Float(($0 * 5) % 11) * 0.1 - 0.5 }
            var ref = [Float](repeating: 0.5, count: m * n)
            referenceGEMM(transA: tA, transB: tB, m: m, n: n, k: k, alpha: 1.5, a: a, b: b, beta: 0.5, c: &ref)
            var runs: [[Float]] = []
            for _ in 0..<2 {
                var c = [Float](repeating: 0.5, count: m * n)
                a.withUnsafeBufferPointer { ab in b.withUnsafeBufferPointer { bb in c.withUnsafeMutableBufferPointer { cb in
                    sgemm(transA: tA, transB: tB, m: m, n: n, k: k, alpha: 1.5, a: ab.baseAddress!, b: bb.baseAddress!, beta: 0.5, c: cb.baseAddress!)
                } } }
                runs.append(c)
            }
            #expect(runs[0] == runs[1])
            for i in 0..<(m * n) { #expect(abs(runs[0][i] - ref[i]) <= 1e-3 * max(1, abs(ref[i]))) }
        }
    }
}
