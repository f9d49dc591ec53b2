import PilotTensor

// Shape letters: L layers, B sequences, S positions a cache holds, KVD = KV·D, W = C + 2·KVD (a q|k|v row).

/// Keys (after RoPE) and values of the positions a `LanguageModel` has seen: position j of sequence b
/// in layer l is one k|v row of 2·KVD floats at `slot(l, b) + j·stride`. Two kinds:
/// - its own buffers, [L, B, S, 2·KVD] (`LanguageModel.makeCache`, text generation);
/// - a view of the training forward's q|k|v rows (`LanguageModel.forwardCache`): the multimodal model's
///   decoding continues from a full forward without copying the prompt's keys (stride W, after the C
///   query columns). Either way `step` reads and writes the same floats in the same order.
public final class KVCache: @unchecked Sendable {
    public let layers: Int, batch: Int, maxLength: Int
    /// Per layer: the k|v row of (sequence 0, position 0).
    let bases: [UnsafeMutablePointer<Float>]
    /// Floats between positions, and between sequences.
    let stride: Int, sequenceStride: Int
    /// Positions filled (text generation: the same for every sequence of the batch).
    public internal(set) var length = 0
    private let owned: UnsafeMutablePointer<Float>?

    /// Own buffers. Not zero-filled: a slot is written before it is read, and the pages of positions
    /// never reached are never touched.
    init(layers: Int, batch: Int, maxLength: Int, kvWidth KVD: Int) {
        self.layers = layers; self.batch = batch; self.maxLength = maxLength
        stride = 2 * KVD; sequenceStride = maxLength * stride
        let p = UnsafeMutablePointer<Float>.allocate(capacity: max(1, layers * batch * sequenceStride))
        owned = p
        bases = (0..<layers).map { p + $0 * batch * maxLength * 2 * KVD }
    }

    /// A view of existing rows (nothing is allocated or copied).
    init(viewing bases: [UnsafeMutablePointer<Float>], batch: Int, maxLength: Int, stride: Int, sequenceStride: Int) {
        layers = bases.count; self.batch = batch; self.maxLength = maxLength
        self.bases = bases; self.stride = stride; self.sequenceStride = sequenceStride
        owned = nil
    }

    deinit { owned?.deallocate() }

    /// Forgets every position (the buffers are reused).
    public func reset() { length = 0 }

    /// The k|v row of position 0 of sequence `b` in layer `l`.
    @inline(__always)
    func slot(_ l: Int, _ b: Int) -> UnsafeMutablePointer<Float> { bases[l] + b * sequenceStride }
}

/// Buffers of `LanguageModel.step`, for R = maxBatch · maxStepTokens rows (allocated on the first step).
final class DecodeState {
    let x: Tensor, h: Tensor, qkv: Tensor, att: Tensor, gu: Tensor, sig: Tensor, act: Tensor, rstd: Tensor, scores: Tensor
    /// [maxBatch, V]: one row of logits per sequence.
    let logits: Tensor
    /// x·A scratch for the LoRA path of a frozen base.
    let xa: Tensor
    /// [maxBatch] first position of each sequence's tokens in a text step.
    let start: UnsafeMutablePointer<Int32>
    /// [R, V] logits of every row, made on the first call that asks for them.
    var allLogits: Tensor?
    /// [maxStepTokens, T] attention scores of a prefill chunk, made on the first chunk.
    var chunkScores: Tensor?

    init(rows R: Int, batch B: Int, C: Int, W: Int, F: Int, V: Int, T: Int, PR: Int) {
        x = Tensor(shape: [R, C]); h = Tensor(shape: [R, C]); qkv = Tensor(shape: [R, W]); att = Tensor(shape: [R, C])
        xa = Tensor(shape: [R, max(1, PR)])
        gu = Tensor(shape: [R, 2 * F]); sig = Tensor(shape: [R, F]); act = Tensor(shape: [R, F])
        logits = Tensor(shape: [B, V]); rstd = Tensor(shape: [R]); scores = Tensor(shape: [T])
        start = .allocate(capacity: B); start.initialize(repeating: 0, count: B)
    }

    deinit { start.deallocate() }
}
