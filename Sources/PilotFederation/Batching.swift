import PilotCore
import PilotData
import PilotModel

// Shape letters: n examples, B sequences in a batch, C image channels, S image side,
// P visual tokens, L = T − P text tokens, T context.

/// Examples made ready for the model once (tokenised, target rows found, pixels normalised), so
/// that every later batch is a few copies. Used by pretraining, client training and evaluation.
public struct PreparedExamples: Sendable {
    public let examples: [Example]
    public let encoded: [EncodedExample]
    /// Number of loss-carrying positions (answer tokens + EOS) of each example.
    public let targetCounts: [Int]
    /// [n, C, S, S] pixels, scaled to [−1, 1] (empty once `features` replaces them).
    let pixels: [Float]
    let config: ModelConfig
    /// The frozen CLIP tower's output for every example, read from the vision-feature cache per batch
    /// (nil: the model computes it from `pixels`).
    public private(set) var features: VisionFeatureRows? = nil
    /// How many examples the layout cut to fit the text length.
    public let truncation: TruncationCount

    public var count: Int { examples.count }

    /// The same examples with their vision features read from `rows` (one row per example, in order)
    /// instead of computed from pixels, which are dropped.
    public func reading(features rows: VisionFeatureRows) throws -> PreparedExamples {
        guard rows.count == count, rows.tokens == config.visualTokens, rows.width == config.visionWidth else {
            throw PilotError.invalidArgument("vision-feature cache '\(rows.path)': \(rows.count) rows of [\(rows.tokens), \(rows.width)] for \(count) examples of a model with [\(config.visualTokens), \(config.visionWidth)] features; delete the file and run again to rebuild it")
        }
        var out = PreparedExamples(examples: examples, encoded: encoded, targetCounts: targetCounts, pixels: [], config: config, truncation: truncation)
        out.features = rows
        return out
    }

    /// The batch of the examples at `indices`, in that order: the visual input (pixels, or the cached
    /// features), text ids [B, L], next-token targets [B, T] (−1 except where the next text token is an
    /// answer token or EOS) and the valid length P + text length of each sequence.
    public func batch<C: Collection>(_ indices: C) throws -> Batch where C.Element == Int {
        let B = indices.count, P = config.visualTokens, T = config.contextLength, L = T - P
        precondition(B >= 1, "a batch needs at least one example")
        var tokens = [Int32](repeating: 0, count: B * L)
        var targets = [Int32](repeating: -1, count: B * T)
        var lengths = [Int32](repeating: 0, count: B)
        for (b, i) in indices.enumerated() {
            let e = encoded[i]
            for j in 0..<L { tokens[b * L + j] = e.ids[j] }
            // The output at the sequence position before text token j's predicts it.
            for j in 1..<L where e.targetMask[j] > 0 { targets[b * T + config.sequencePosition(ofText: j) - 1] = e.ids[j] }
            lengths[b] = Int32(P + e.length)
        }
        return Batch(size: B, visual: try visual(indices), tokens: tokens, targets: targets, lengths: lengths)
    }

    /// The visual input of the examples at `indices` (also that of `MLLM.generate`): their cached
    /// features [B, P, Dv], or their pixels [B, C, S, S].
    public func visual<C: Collection>(_ indices: C) throws -> Batch.Visual where C.Element == Int {
        if let features { return .features(try features.read(indices)) }
        let image = config.channels * config.imageSize * config.imageSize
        var px = [Float](repeating: 0, count: indices.count * image)
        px.withUnsafeMutableBufferPointer { dst in
            pixels.withUnsafeBufferPointer { src in
                for (b, i) in indices.enumerated() {
                    (dst.baseAddress! + b * image).update(from: src.baseAddress! + i * image, count: image)
                }
            }
        }
        return .pixels(px)
    }

    /// `[BOS] instruction [SEP]` of example i (the generation prompt).
    public func prompt(_ i: Int) -> [Int32] { Array(encoded[i].ids.prefix(encoded[i].promptLength)) }
}

/// Turns PilotData examples into model batches for one model configuration and text codec.
public struct Batcher: Sendable {
    public let config: ModelConfig
    public let codec: any ExampleCodec
    /// Cut too-long (imported) examples instead of failing (see the codec's `encode`).
    public let truncate: Bool

    public init(config: ModelConfig, codec: any ExampleCodec, truncate: Bool = false) throws {
        guard codec.vocabularySize <= config.vocabSize else {
            throw PilotError.invalidArgument("tokenizer has \(codec.vocabularySize) tokens but the model's vocab_size is \(config.vocabSize); raise vocab_size")
        }
        guard config.channels == 3 else {
            throw PilotError.invalidArgument("model config: channels \(config.channels); the data is RGB (3 channels)")
        }
        guard codec.visualPosition == config.visualOffset else {
            throw PilotError.invalidArgument("the model puts its visual tokens after \(config.visualOffset) text tokens but the text layout (\(codec.summary)) has \(codec.visualPosition) before the image; the LM's chat template or tokenizer changed since the base was pretrained: pretrain a new base")
        }
        guard config.textLength >= codec.minimumTextLength else {
            throw PilotError.invalidArgument("the model's text length (\(config.textLength) tokens) is too short for the text layout (\(codec.summary)), which needs at least \(codec.minimumTextLength); pretrain with a longer --text-length")
        }
        self.config = config
        self.codec = codec
        self.truncate = truncate
    }

    /// The built-in layout over a word-level tokenizer.
    public init(config: ModelConfig, tokenizer: Tokenizer, truncate: Bool = false) throws {
        try self.init(config: config, codec: WordLevelCodec(tokenizer), truncate: truncate)
    }

    /// Tokenises every example and converts its image; throws naming the first example that does not fit.
    public func prepare(_ examples: [Example]) throws -> PreparedExamples {
        let S = config.imageSize, image = 3 * S * S
        var pixels = [Float](repeating: 0, count: examples.count * image)
        var encoded: [EncodedExample] = []
        encoded.reserveCapacity(examples.count)
        for (i, e) in examples.enumerated() {
            guard e.image.width == S, e.image.height == S else {
                throw PilotError.invalidArgument("example '\(e.id)': image is \(e.image.width)x\(e.image.height) but the model takes \(S)x\(S); regenerate or import the data with --image-size \(S)")
            }
            Batcher.writePixels(e.image, into: &pixels, at: i * image)
            encoded.append(try codec.encode(e, textLength: config.textLength, truncate: truncate))
        }
        let counts = encoded.map { $0.targetMask.reduce(0) { $0 + ($1 > 0 ? 1 : 0) } }
        return PreparedExamples(examples: examples, encoded: encoded, targetCounts: counts, pixels: pixels, config: config,
                                truncation: TruncationCount(truncated: encoded.filter(\.truncated).count, total: encoded.count))
    }

    /// One batch of `examples` (convenience for callers that do not reuse the preparation).
    public func batch(_ examples: [Example]) throws -> Batch {
        try prepare(examples).batch(0..<examples.count)
    }

    /// The model's pixel input for one image: [C, S, S] (channels first), v/127.5 − 1 ∈ [−1, 1].
    public static func pixels(_ image: RGBImage) -> [Float] {
        var out = [Float](repeating: 0, count: image.pixels.count)
        writePixels(image, into: &out, at: 0)
        return out
    }

    static func writePixels(_ image: RGBImage, into out: inout [Float], at offset: Int) {
        let hw = image.width * image.height
        image.pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for p in 0..<hw {
                    for c in 0..<3 { dst[offset + c * hw + p] = Float(src[3 * p + c]) / 127.5 - 1 }
                }
            }
        }
    }
}
