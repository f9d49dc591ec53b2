/// Element types of stored tensors. Raw values are the names safetensors and GGUF use.
public enum TensorDType: String, Sendable, CaseIterable {
    case f32 = "F32", f16 = "F16", bf16 = "BF16"
    case q8_0 = "Q8_0", q4_0 = "Q4_0", q4_1 = "Q4_1"
}

/// One stored tensor: its name in the file, row-major shape (Hugging Face order, `[out, in]` for a
/// linear weight) and stored element type.
public struct TensorInfo: Sendable, Equatable {
    public let name: String
    public let shape: [Int]
    public let dtype: TensorDType
    public init(name: String, shape: [Int], dtype: TensorDType) { self.name = name; self.shape = shape; self.dtype = dtype }
    public var count: Int { shape.reduce(1, *) }
}

/// Anything that hands out named tensors as Float32: a safetensors file, a sharded safetensors
/// checkpoint, a GGUF file seen through Hugging Face names. Implementations read from a memory map,
/// so a tensor is converted straight into the caller's buffer and never held twice.
public protocol TensorSource: AnyObject {
    /// The file or directory, for error messages.
    var path: String { get }
    /// Every tensor, in file order.
    var tensorInfos: [TensorInfo] { get }
    /// The tensor called `name`, or nil.
    func info(_ name: String) -> TensorInfo?
    /// Converts tensor `name` to Float32 into `out`, whose count must equal the tensor's element count.
    /// Throws a `PilotError` that names the file and the tensor.
    func readFloat32(_ name: String, into out: UnsafeMutableBufferPointer<Float>) throws
    /// The file that holds tensor `name` (or would: the one file of a single-file source), for error messages.
    func location(of name: String) -> String
}

extension TensorSource {
    public func location(of name: String) -> String { path }
}
