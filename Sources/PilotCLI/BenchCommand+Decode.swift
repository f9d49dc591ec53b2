import ArgumentParser
import Foundation
import PilotCore
import PilotLM
import PilotModel
import PilotTensor

/// `pilot bench --model DIR --decode`: decode speed against the memory-bound limit.
struct DecodeBenchOptions: ParsableArguments {
    @Flag(help: "With --model: time decoding one sequence (greedy) in each dtype against the single-core read bandwidth measured beside it, instead of the LoRA step.")
    var decode = false
    @Option(help: "With --decode: dtypes of the frozen weights, comma-separated (the model is loaded in each, as --base-dtype would).")
    var decodeDtypes = "f32,bf16,q8"
    @Option(help: "With --decode: new tokens timed per dtype and round.")
    var decodeTokens = 64
    @Option(help: "With --decode: rounds over the dtypes.")
    var decodeRounds = 3
    @Option(help: "With --decode: MiB of the buffer the read bandwidth is measured over (written first, far larger than the caches; a sixteenth of it after every decode step).")
    var bandwidthMib = 1024

    func dtypes() throws -> [BaseDType] {
        try decodeDtypes.split(separator: ",").map { s in
            guard let d = BaseDType(rawValue: s.trimmingCharacters(in: .whitespaces)) else {
                throw ValidationError("--decode-dtypes: '\(s)' is not one of \(BaseDType.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            return d
        }
    }

    func validate() throws {
        guard decodeTokens >= 1, decodeRounds >= 1, bandwidthMib >= 1 else {
            throw ValidationError("--decode-tokens, --decode-rounds and --bandwidth-mib must be at least 1")
        }
        _ = try dtypes()
    }
}

extension BenchCommand {
    /// Decode tokens/s per dtype and the limit beside it: the read bandwidth of one core (a vectorized
    /// read loop over a written buffer) divided by the frozen weight bytes one step reads. A bandwidth
    /// sample follows every decode step, so both see the same load from other processes; the medians of
    /// both are compared.
    func runDecode(_ dir: String) throws {
        let n = decodeOptions.decodeTokens, dtypes = try decodeOptions.dtypes()
        var models: [(BaseDType, LanguageModel)] = [], prompt: [Int32] = [], tokenizer: BPETokenizer?
        for d in dtypes {
            let t0 = DispatchTime.now().uptimeNanoseconds
            let lm = try PretrainedLM(directory: dir, dtype: d)
            prompt = lm.chatPromptIDs([ChatMessage(.user, "Tell me a long story about a lighthouse keeper and the sea.")])
            tokenizer = lm.tokenizer
            let m = try lm.decoder(maxBatch: 1, maxTokens: prompt.count, maxContext: prompt.count + n + 1)
            print(String(format: "%@: %.1f MB of frozen weights read per token (loaded in %.1f s)", d.rawValue,
                         Double(m.decodeWeightBytes) / 1e6, Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9))
            models.append((d, m))
        }
        let probe = ReadBandwidthProbe(bytes: decodeOptions.bandwidthMib << 20), slices = 16
        // at 1 thread, both sides are timed in this thread's CPU time: other processes on the machine then
        // slow neither (a descheduled step would otherwise count against the kernel, and a short read
        // sample mostly escapes it); at more threads, in elapsed time
        let clock: ReadBandwidthProbe.Clock = Parallel.threads == 1 ? .thread : .wall
        print("decode: \(dir), \(prompt.count) prompt tokens, \(n) new tokens timed (greedy), kernels \(GEMVKernel.best), engine threads \(Parallel.threads); after every step, one core's read bandwidth over the next \(decodeOptions.bandwidthMib / slices) MiB of a written \(decodeOptions.bandwidthMib) MiB buffer; medians of both, in \(clock == .thread ? "this thread's CPU time" : "elapsed time") (decode tokens/s in elapsed time beside)")
        var ratios: [BaseDType: [Double]] = [:]
        for round in 1...decodeOptions.decodeRounds {
            for (d, model) in models {
                let r = try Self.decode(model, prompt: prompt, newTokens: n, clock: clock) { probe.measure(slice: $0, of: slices, clock: clock) }
                let tokS = 1 / r.steps.sorted()[n / 2], wallTokS = 1 / r.wallSteps.sorted()[n / 2]
                let bandwidth = r.reads.sorted()[n / 2]
                let limit = bandwidth / Double(model.decodeWeightBytes), ratio = tokS / limit
                ratios[d, default: []].append(ratio)
                print(String(format: "round %d  %@  read %5.1f GB/s  limit %6.1f tokens/s  decode %6.1f tokens/s  %3.0f%% of the limit  (elapsed: %6.1f tokens/s)",
                             round, d.rawValue.padding(toLength: 4, withPad: " ", startingAt: 0), bandwidth / 1e9, limit, tokS, 100 * ratio, wallTokS))
                if round == 1, let tokenizer { print("      \(d.rawValue) text: \(tokenizer.decode(Array(r.ids.prefix(24)), skipSpecial: true).debugDescription)") }
                if let json {
                    let line = String(format: "{\"bench\": \"decode\", \"dtype\": \"%@\", \"round\": %d, \"threads\": %d, \"kernel\": \"%@\", \"clock\": \"%@\", \"read_gb_s\": %.2f, \"weight_bytes\": %d, \"limit_tok_s\": %.1f, \"decode_tok_s\": %.1f, \"decode_tok_s_elapsed\": %.1f, \"ratio\": %.3f, \"loadavg\": %.2f}\n",
                                      d.rawValue, round, Parallel.threads, "\(GEMVKernel.best)", clock == .thread ? "thread" : "wall", bandwidth / 1e9,
                                      model.decodeWeightBytes, limit, tokS, wallTokS, ratio, BenchCommand.loadAverage())
                    if let h = FileHandle(forWritingAtPath: json) { h.seekToEndOfFile(); h.write(Data(line.utf8)); h.closeFile() }
                    else { _ = FileManager.default.createFile(atPath: json, contents: Data(line.utf8)) }
                }
            }
        }
        for (d, _) in models {
            let r = ratios[d, default: []].sorted()
            print(String(format: "%@: median %.0f%% of the limit (%.0f–%.0f%% over %d rounds)", d.rawValue, 100 * r[r.count / 2],
                         100 * r.first!, 100 * r.last!, r.count))
        }
        print(String(format: "peak RSS %.1f MiB", BenchCommand.peakRSSMiB()))
    }

    /// Prefills `prompt`, then decodes `newTokens` greedily, calling `between(i)` after step i (untimed):
    /// the seconds of each step on `clock` and elapsed (sampling included), what `between` returned, the ids.
    static func decode(_ model: LanguageModel, prompt: [Int32], newTokens n: Int, clock: ReadBandwidthProbe.Clock,
                       between: (Int) -> Double) throws -> (steps: [Double], wallSteps: [Double], reads: [Double], ids: [Int32]) {
        let cache = model.makeCache(batch: 1, maxLength: prompt.count + n + 1)
        let sampler = try Sampler(.greedy, vocabSize: model.vocabSize)
        var logits = try prompt.withUnsafeBufferPointer { try model.forward(tokens: $0, batch: 1, cache: cache, logits: .last) }
        var ids: [Int32] = [], token: [Int32] = [0], steps: [Double] = [], wallSteps: [Double] = [], reads: [Double] = []
        for i in 0..<n {
            let c0 = clock.now(), w0 = ReadBandwidthProbe.Clock.wall.now()
            token[0] = sampler.next(logits.baseAddress!)
            ids.append(token[0])
            logits = try token.withUnsafeBufferPointer { try model.forward(tokens: $0, batch: 1, cache: cache, logits: .last) }
            steps.append(clock.now() - c0); wallSteps.append(ReadBandwidthProbe.Clock.wall.now() - w0)
            reads.append(between(i))
        }
        return (steps, wallSteps, reads, ids)
    }
}
