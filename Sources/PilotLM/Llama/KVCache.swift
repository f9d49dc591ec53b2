/// Keys and values of every position seen so far, in buffers of their own (never the activations of a
/// forward pass): K and V are each [L, B, KV, S, D] with S = `maxLength`. A forward call at position `p`
/// writes its T tokens' keys/values to slots p ..< p+T, and attention reads slots 0 ... p+t; so a prefill
/// followed by one-token decode steps computes exactly what a single long prefill would.
public final class KVCache: @unchecked Sendable {
    public let layers: Int, batch: Int, kvHeads: Int, maxLength: Int, headDim: Int
    public let keys: UnsafeMutablePointer<Float>    // [L, B, KV, S, D]
    public let values: UnsafeMutablePointer<Float>  // [L, B, KV, S, D]
    /// Positions filled (the same for every sequence of the batch).
    public internal(set) var length = 0

    public init(config: LlamaConfig, batch: Int, maxLength: Int) {
        layers = config.numHiddenLayers; self.batch = batch; kvHeads = config.numKeyValueHeads
        self.maxLength = maxLength; headDim = config.headDim
        let n = layers * batch * kvHeads * maxLength * headDim
        keys = .allocate(capacity: n); keys.initialize(repeating: 0, count: n)
        values = .allocate(capacity: n); values.initialize(repeating: 0, count: n)
    }

    deinit { keys.deallocate(); values.deallocate() }

    /// Forgets every position (the buffers are reused).
    public func reset() { length = 0 }

    /// Start of the [S, D] slab of (layer, sequence, KV head).
    @inline(__always)
    func offset(layer l: Int, sequence b: Int, head g: Int) -> Int {
        ((l * batch + b) * kvHeads + g) * maxLength * headDim
    }
}
