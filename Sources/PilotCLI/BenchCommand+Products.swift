import ArgumentParser
import Dispatch
import Foundation
import PilotModel
import PilotTensor

extension BenchCommand {
    /// The frozen products of a SmolLM2-135M step (M rows; q|k|v, o, gate|up, down and the tied head),
    /// forward y = x·Wᵀ and backward dx = dy·W, three ways, interleaved in one loop so that a foreign load
    /// hits them alike: an f32 weight (one sgemm), a bf16 weight decoded to f32 tiles for sgemm, and a
    /// bf16 weight on oneDNN's bf16 kernel. Also the kernel's rounding of the activations to bf16 alone.
    /// Medians of `steps` rounds after `warmup`; quoted as ratios to f32.
    func runProducts(rows m: Int) throws {
        guard m >= 1 else { throw ValidationError("--product-rows must be at least 1") }
        print(BF16Kernel.summary)
        let kernel = FrozenProducts(bf16Kernel: true)
        if !kernel.usesBF16Kernel { print("no bf16 kernel on this CPU: timing f32 and bf16 decode+sgemm only") }
        let plain = FrozenProducts(bf16Kernel: false)
        let shapes: [(String, Int, Int)] = [("q|k|v", 960, 576), ("o", 576, 576), ("gate|up", 3072, 576), ("down", 576, 1536), ("head", 49_152, 576)]
        print("M = \(m) rows, W [O, I]; medians of \(steps) interleaved rounds; ratios are f32 time / this time (> 1: faster than f32)")
        print("shape      O      I  dir   f32 ms  GFLOP/s   decode+sgemm ms (×f32)   oneDNN bf16 ms (×f32)  GFLOP/s   x→bf16 ms")
        var jsonLines: [String] = []
        for (name, o, i) in shapes {
            var rng = SeededRNG(seed: UInt64(o * 7 + i))
            let w = (0..<(o * i)).map { _ in Float(rng.uniform() - 0.5) * 0.1 }
            let x = (0..<(m * i)).map { _ in Float(rng.uniform() - 0.5) }
            let dy = (0..<(m * o)).map { _ in Float(rng.uniform() - 0.5) }
            var wb = [UInt8](repeating: 0, count: BaseDType.bf16.bytes(rows: o, cols: i))
            w.withUnsafeBufferPointer { src in wb.withUnsafeMutableBytes { FrozenEncoding.encode(src, as: .bf16, into: $0.baseAddress!) } }
            var y = [Float](repeating: 0, count: m * o), dx = [Float](repeating: 0, count: m * i)
            var xb = [UInt16](repeating: 0, count: m * max(i, o))
            // times[direction][way]: way 0 f32, 1 decode+sgemm, 2 oneDNN, 3 activation rounding
            var times = [[[Double]]](repeating: [[Double]](repeating: [], count: 4), count: 2)
            w.withUnsafeBufferPointer { pw in wb.withUnsafeBytes { raw in
                let f32 = FrozenMatrix(rows: o, cols: i, float32: pw.baseAddress!)
                let bf16 = FrozenMatrix(dtype: .bf16, rows: o, cols: i, raw: raw.baseAddress!)
                for round in 0..<(warmup + steps) {
                    for dir in 0..<2 {
                        for way in 0..<4 {
                            if way == 2 && !kernel.usesBF16Kernel { continue }
                            let t0 = DispatchTime.now().uptimeNanoseconds
                            switch (dir, way) {
                            case (0, 3): FrozenEncoding.bf16Rows(x, ldx: i, rows: m, cols: i, into: &xb)
                            case (1, 3): FrozenEncoding.bf16Rows(dy, ldx: o, rows: m, cols: o, into: &xb)
                            case (0, _): (way == 2 ? kernel : plain).forward(y: &y, x: x, rows: m, weight: way == 0 ? f32 : bf16)
                            default: (way == 2 ? kernel : plain).backward(dx: &dx, dy: dy, rows: m, weight: way == 0 ? f32 : bf16)
                            }
                            if round >= warmup { times[dir][way].append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9) }
                        }
                    }
                }
            } }
            let flops = 2 * Double(m) * Double(o) * Double(i)
            for dir in 0..<2 {
                let med = times[dir].map { $0.isEmpty ? Double.nan : $0.sorted()[$0.count / 2] }
                print(String(format: "%@ %6d %6d  %@  %7.2f  %7.1f   %10.2f (%.2f×)   %14.2f (%.2f×)  %7.1f   %8.3f",
                             name.padding(toLength: 8, withPad: " ", startingAt: 0), o, i, dir == 0 ? "fwd" : "bwd", med[0] * 1e3, flops / med[0] / 1e9, med[1] * 1e3, med[0] / med[1],
                             med[2] * 1e3, med[0] / med[2], flops / med[2] / 1e9, med[3] * 1e3))
                jsonLines.append(String(format: "{\"bench\": \"products\", \"shape\": \"%@\", \"dir\": \"%@\", \"rows\": %d, \"out\": %d, \"in\": %d, \"threads\": %d, \"f32_ms\": %.4f, \"bf16_decode_ms\": %.4f, \"bf16_kernel_ms\": %.4f, \"to_bf16_ms\": %.4f, \"kernel\": \"%@\", \"blas_core\": \"%@\", \"loadavg\": %.2f}\n",
                                        name, dir == 0 ? "fwd" : "bwd", m, o, i, threads, med[0] * 1e3, med[1] * 1e3, med[2] * 1e3, med[3] * 1e3,
                                        BF16Kernel.summary, BLASRuntime.coreName, BenchCommand.loadAverage()))
            }
        }
        if let json {
            let text = jsonLines.joined()
            if let h = FileHandle(forWritingAtPath: json) { h.seekToEndOfFile(); h.write(Data(text.utf8)); h.closeFile() }
            else { _ = FileManager.default.createFile(atPath: json, contents: Data(text.utf8)) }
        }
    }
}
