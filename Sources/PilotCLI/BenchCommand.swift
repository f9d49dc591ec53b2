import ArgumentParser
import Foundation
import PilotCore
import PilotModel
import PilotTensor

/// `pilot bench`: one training step of the reference configuration (../shared/bench/README.md:
/// B=16, T=64, stage-2 CT-MoA, LoRA r=16 on q,k,v,o,gate,up,down, AdamW), timed.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Time one training step of the reference model (B=16, T=64, stage-2 CT-MoA) and compare with the sgemm peak.",
        discussion: """
        Prints tokens/s (median of --steps timed steps after --warmup steps), the analytic matmul FLOPs \
        per step (counted as jax_ref.py --flops does), GFLOP/s, the share of the sgemm peak measured \
        here, and the peak RSS. With --reference FILE.h5 (written by jax_ref.py --dump-h5) it loads those \
        weights and that batch and prints the first three losses next to the reference's. \
        Pin the process for stable numbers, e.g. `taskset -c 0 pilot bench --threads 1`.
        """)

    @Option(help: "Worker threads for OpenBLAS and the engine's own loops (1 or 2 on this machine).")
    var threads = 1
    @Option(help: "Timed steps.")
    var steps = 30
    @Option(help: "Untimed warm-up steps.")
    var warmup = 5
    @Option(help: "A jax_ref.py --dump-h5 file: use its weights and batch and compare the first three losses.")
    var reference: String?
    @Flag(help: "Skip measuring the sgemm peak.")
    var noPeak = false
    @Option(help: "Append a JSON line with the results to this file.")
    var json: String?
    @Option(help: "An imported LM directory (pilot model import): time one LoRA training step of it on text instead (../shared/bench/hf_lora_step.py is the PyTorch reference).")
    var model: String?
    @Option(help: "With --model: sequences per step.")
    var batch = 4
    @Option(help: "With --model: tokens per sequence.")
    var seq = 128
    @Option(help: "With --model: LoRA rank (alpha = 2·rank, on q,k,v,o,gate,up,down as the reference).")
    var rank = 16
    @Option(help: "With --model: the frozen matrices in f32, bf16 or q8 (compare with hf_lora_step_modes.py --mode fp32|bf16|autocast).")
    var baseDtype = "f32"
    @Flag(help: "With --model: keep only each layer's input and recompute the layer in the backward pass (train.recompute_activations); the stored activation bytes are printed either way.")
    var recomputeActivations = false
    @Option(help: "Time ATA (Pilot Eq. 11–12) for this many clients instead: alone, the server step (one sgemm Gram matrix, top-6 weights, mixing; scripts/bench/bench_scale.sh); under mpirun, ATA across ranks (each client rank makes and keeps its own clients' vectors).")
    var ataClients: Int?
    @Option(help: "With --ata-clients: LoRA values per client.")
    var ataParams = 1_000_000
    @Option(help: "With --ata-clients under mpirun (ATA across ranks): values per column block.")
    var ataBlock = 2_048   // DistributedATA.defaultBlock
    @Flag(help: "Time the frozen products of a SmolLM2-135M step instead: f32 sgemm, bf16 decode+sgemm and bf16 on oneDNN's kernel, interleaved.")
    var products = false
    @Option(help: "With --products: rows of the activations (batch × tokens).")
    var productRows = 512
    @OptionGroup var decodeOptions: DecodeBenchOptions

    func validate() throws {
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
        guard steps >= 1, warmup >= 0 else { throw ValidationError("--steps must be ≥ 1 and --warmup ≥ 0") }
        if decodeOptions.decode && model == nil { throw ValidationError("--decode needs --model DIR (an imported LM)") }
        guard BaseDType(rawValue: baseDtype) != nil else { throw ValidationError("--base-dtype must be f32, bf16 or q8, not '\(baseDtype)'") }
    }

    func run() throws {
        Parallel.configure(threads: threads)
        if let ataClients, let size = LaunchEnvironment().size, size > 1 {
            return try runDistributedATA(clients: ataClients, params: ataParams, block: ataBlock)
        }
        print("pilot bench: \(BLASRuntime.summary), engine threads \(Parallel.threads)")
        if products { return try runProducts(rows: productRows) }
        print(BF16Kernel.summary)
        if decodeOptions.decode {
            guard let model else { throw ValidationError("--decode needs --model DIR (an imported LM)") }
            return try runDecode(model)
        }
        if let model { return try runModel(model) }
        if let ataClients { return try runATA(clients: ataClients, params: ataParams) }
        let model: MLLM, batch: Batch, lr: Float
        if let reference {
            let ref = try JAXReference(path: reference)
            model = try ref.makeModel()
            batch = ref.batch; lr = ref.learningRate
            print("reference \(reference): comparing the first three losses (loss before each update)")
            print("step       total (swift)   total (jax)     |diff|     ce / z / lb (swift)            ce / z / lb (jax)")
            for s in 0..<min(3, ref.losses.count) {
                let l = try model.trainStep(batch, learningRate: lr)
                let r = ref.losses[s], p = ref.parts[s]
                print(String(format: "%4d  %14.6f  %14.6f  %9.2e     %.6f / %.6f / %.6f     %.6f / %.6f / %.6f",
                             s + 1, l.total, r, abs(l.total - r), l.ce, l.z, l.balance, p[0], p[1], p[2]))
            }
        } else {
            (model, batch) = try BenchCommand.syntheticReference()
            lr = 1e-4
        }
        let B = batch.size, T = model.config.contextLength
        let targetRows = batch.targets.filter { $0 >= 0 }.count
        let flops = model.analyticFLOPs(batch: B, targetRows: targetRows)
        print(String(format: "model: %d trainable + %d frozen parameters; %.4f GFLOP per step (analytic, matmuls only)",
                     model.parameters.trainableCount, model.parameters.frozenCount, flops / 1e9))

        for _ in 0..<warmup { try model.trainStep(batch, learningRate: lr) }
        var times = [Double](repeating: 0, count: steps)
        var allocs = [UInt](repeating: 0, count: steps)
        let counter = BenchCommand.allocationCounter()
        var last = 0.0
        for s in 0..<steps {
            let a0 = counter?() ?? 0
            let t0 = DispatchTime.now().uptimeNanoseconds
            last = try model.trainStep(batch, learningRate: lr).total
            times[s] = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
            allocs[s] = (counter?() ?? 0) &- a0
        }
        let sorted = times.sorted()
        let median = sorted[sorted.count / 2]
        let tokS = Double(B * T) / median
        let gflops = flops / median / 1e9
        print(String(format: "tokens/s (median of %d): %.1f  step %.2f ms [min %.2f, max %.2f]  %.1f GFLOP/s  final loss %.6f",
                     steps, tokS, median * 1e3, sorted.first! * 1e3, sorted.last! * 1e3, gflops, last))
        if counter != nil {
            print("heap allocations per training step after warm-up: \(allocs.max()!) max, \(allocs.reduce(0, +)) in \(steps) steps (malloc-family calls, scripts/bench/malloc_count.c)")
        } else {
            print("heap allocations per step: not counted (run with LD_PRELOAD=.build-engine/libmalloc_count.so, built by scripts/bench/bench.sh)")
        }
        var peak = Double.nan
        if !noPeak {
            peak = BenchCommand.sgemmPeak()
            print(String(format: "sgemm peak here (1024³, best of 8): %.1f GFLOP/s → this step runs at %.1f%% of it; wall (every matmul at peak): %.0f tokens/s",
                         peak, 100 * gflops / peak, Double(B * T) / (flops / (peak * 1e9))))
        }
        let rss = BenchCommand.peakRSSMiB()
        print(String(format: "peak RSS %.1f MiB", rss))
        if let json {
            let line = String(format: "{\"threads\": %d, \"tok_s_median\": %.1f, \"step_ms_median\": %.3f, \"gflops\": %.2f, \"sgemm_peak\": %.2f, \"flops\": %.0f, \"peak_rss_mib\": %.1f, \"loadavg\": %.2f, \"allocs_per_step_max\": %d}\n",
                              threads, tokS, median * 1e3, gflops, peak, flops, rss, BenchCommand.loadAverage(),
                              counter == nil ? -1 : Int(allocs.max()!))
            if let h = FileHandle(forWritingAtPath: json) { h.seekToEndOfFile(); h.write(Data(line.utf8)); h.closeFile() }
            else { _ = FileManager.default.createFile(atPath: json, contents: Data(line.utf8)) }
        }
    }

    /// One LoRA step of an imported LM on English text, the step of hf_lora_step.py: B×T tokens with
    /// labels = input ids, LoRA r, α = 2r on all seven linears, AdamW (lr 2e-4, weight decay 0.01 as
    /// torch.optim.AdamW's default).
    func runModel(_ dir: String) throws {
        let t0 = DispatchTime.now().uptimeNanoseconds
        let base = try PretrainedBase(directory: dir, dtype: BaseDType(rawValue: baseDtype)!)
        let m = try TextLoRAModel(base: base, rank: rank, alpha: Float(2 * rank), maxBatch: batch, seqLen: seq, seed: 0,
                                  optimizer: .init(weightDecay: 0.01), recomputeActivations: recomputeActivations)
        print(String(format: "loaded %@ in %.1f s: %d parameters in %@ (%.0f MiB), %d trainable (LoRA r=%d); peak RSS %.0f MiB",
                     dir, Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9, base.weights.parameterCount, baseDtype,
                     Double(base.weights.bytes.count) / 1048576, m.parameters.trainableCount, rank, BenchCommand.peakRSSMiB()))
        let activationMiB = Double(m.storedActivationBytes) / 1_048_576
        print(String(format: "activation recomputation %@: stored activations %.1f MiB", recomputeActivations ? "on" : "off", activationMiB))
        let text = String(repeating: "The quick brown fox jumps over the lazy dog. Federated learning trains a shared model across many clients "
            + "without moving their raw data to a server. Each client computes an update on its local examples, and the "
            + "server averages those updates into a new global model. ", count: 20)
        let ids = base.tokenizer.encode(text)
        let need = batch * seq
        let tokens = (0..<need).map { ids[$0 % ids.count] }
        let flops = m.analyticFLOPs(batch: batch)
        // forward only
        var fwd: [Double] = []
        var baseLoss = 0.0
        for i in 0..<(warmup + steps) {
            let s0 = DispatchTime.now().uptimeNanoseconds
            baseLoss = try m.loss(tokens, batch: batch)
            if i >= warmup { fwd.append(Double(DispatchTime.now().uptimeNanoseconds - s0) / 1e9) }
        }
        var times: [Double] = [], losses: [Double] = []
        for i in 0..<(warmup + steps) {
            if i == warmup { GEMMProfile.reset() }
            let s0 = DispatchTime.now().uptimeNanoseconds
            losses.append(try m.trainStep(tokens, batch: batch, learningRate: 2e-4))
            if i >= warmup { times.append(Double(DispatchTime.now().uptimeNanoseconds - s0) / 1e9) }
        }
        let med = times.sorted()[times.count / 2], fmed = fwd.sorted()[fwd.count / 2]
        let rss = BenchCommand.peakRSSMiB()
        print(String(format: "forward: %.3f s/batch → %.0f tokens/s; base loss %.3f", fmed, Double(need) / fmed, baseLoss))
        print(String(format: "LoRA step: median %.3f s → %.1f tokens/s; %.1f GFLOP/s (%.0f MFLOP/token analytic); losses %@",
                     med, Double(need) / med, flops / med / 1e9, flops / Double(need) / 1e6,
                     losses.map { String(format: "%.3f", $0) }.joined(separator: " ")))
        print(String(format: "peak RSS %.1f MiB", rss))
        if GEMMProfile.enabled { print(GEMMProfile.report(steps: steps)) }
        let coreEnv = ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"]
        print("OpenBLAS kernel: \(BLASRuntime.coreName)" + (coreEnv.map { " (OPENBLAS_CORETYPE=\($0) in the environment)" } ?? " (OpenBLAS's own choice for this CPU)"))
        if let json {
            let blas = "\"blas_core\": \"\(BLASRuntime.coreName)\", \"openblas_coretype_env\": " + (coreEnv.map { "\"\($0)\"" } ?? "null") + ", "
            let line = "{\"engine\": \"pilot\", \"base_dtype\": \"\(baseDtype)\", " + blas + String(format: "\"threads\": %d, \"batch\": %d, \"seq\": %d, \"lora_r\": %d, \"fwd_tok_per_s\": %.1f, \"train_tok_per_s\": %.1f, \"step_s_median\": %.4f, \"step_s_all\": [%@], \"losses\": [%@], \"peak_rss_mb\": %.0f, \"mflop_per_token\": %.1f, \"loadavg\": %.2f, \"recompute_activations\": %@, \"stored_activations_mib\": %.1f}\n",
                                                                  threads, batch, seq, rank, Double(need) / fmed, Double(need) / med, med,
                              times.map { String(format: "%.4f", $0) }.joined(separator: ", "),
                              losses.map { String(format: "%.4f", $0) }.joined(separator: ", "), rss,
                              flops / Double(need) / 1e6, BenchCommand.loadAverage(), recomputeActivations ? "true" : "false", activationMiB)
            if let h = FileHandle(forWritingAtPath: json) { h.seekToEndOfFile(); h.write(Data(line.utf8)); h.closeFile() }
            else { _ = FileManager.default.createFile(atPath: json, contents: Data(line.utf8)) }
        }
    }

    /// The reference configuration with seeded random weights and batch (LoRA B ~ N(0, 0.01) as in jax_ref.py).
    static func syntheticReference() throws -> (MLLM, Batch) {
        var cfg = ModelConfig.tiny
        cfg.loraBInitStd = 0.01
        var opts = ConnectorOptions()
        opts.clientAdapterInStage2 = .trainable
        let B = 16, P = cfg.visualTokens, T = cfg.contextLength, L = T - P, answers = 24
        let model = try MLLM(config: cfg, variant: .pilotStage2, options: opts, trainable: .connectorAndLoRA, maxBatch: B, seed: 0)
        var rng = SeededRNG(seed: 1000)
        let hv = (0..<(B * P * cfg.visionWidth)).map { _ in Float(rng.normal()) }
        let tokens = (0..<(B * L)).map { _ in Int32(rng.next() % UInt64(cfg.vocabSize)) }
        var targets = [Int32](repeating: -1, count: B * T)
        for b in 0..<B { for j in 0..<answers { targets[b * T + T - answers - 1 + j] = tokens[b * L + L - answers + j] } }
        return (model, Batch(size: B, visual: .features(hv), tokens: tokens, targets: targets))
    }

    /// Best-of-8 sgemm rate at 1024³ with the current thread setting.
    static func sgemmPeak() -> Double {
        let n = 1024
        let a = Tensor(shape: [n, n]), b = Tensor(shape: [n, n]), c = Tensor(shape: [n, n])
        for i in 0..<(n * n) { a.pointer[i] = Float(i % 7) * 0.1; b.pointer[i] = Float(i % 5) * 0.1 }
        var best = Double.infinity
        for _ in 0..<8 {
            let t0 = DispatchTime.now().uptimeNanoseconds
            sgemm(m: n, n: n, k: n, a: a.pointer, b: b.pointer, c: c.pointer)
            best = min(best, Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
        }
        return 2 * Double(n * n * n) / best / 1e9
    }

    /// `pilot_alloc_count` from scripts/bench/malloc_count.c when it is preloaded, else nil.
    static func allocationCounter() -> (@convention(c) () -> UInt)? {
        guard let sym = dlsym(nil, "pilot_alloc_count") else { return nil }
        return unsafeBitCast(sym, to: (@convention(c) () -> UInt).self)
    }

    static func peakRSSMiB() -> Double {
        var u = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &u)
        return Double(u.ru_maxrss) / 1024
    }

    static func loadAverage() -> Double {
        var l = [Double](repeating: 0, count: 3)
        return getloadavg(&l, 3) > 0 ? l[0] : .nan
    }
}
