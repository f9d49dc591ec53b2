import PilotCore
import PilotTensor

/// Element types of stored tensors. Raw values are the names safetensors and GGUF use.
public enum TensorDType: String, Sendable, CaseIterable {
    case f32 = "F32", f16 = "F16", bf16 = "BF16", i8 = "I8"
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
    /// Tensor `name` (a [rows, cols] matrix, or anything in f32) stored as `dtype` into `out`, which holds
    /// `dtype.bytes(rows:cols:)` bytes. The default converts to Float32 and encodes (`FrozenEncoding`); a
    /// source whose stored dtype already is `dtype` copies its bytes instead (safetensors BF16 as bf16, GGUF
    /// Q8_0 as q8), so no value makes a round trip through Float32.
    func readEncoded(_ name: String, as dtype: BaseDType, into out: UnsafeMutableRawBufferPointer) throws
}

extension TensorSource {
    public func location(of name: String) -> String { path }

    public func readEncoded(_ name: String, as dtype: BaseDType, into out: UnsafeMutableRawBufferPointer) throws {
        try encodeFromFloat32(name, as: dtype, into: out)
    }

    /// `readEncoded` through Float32: `readFloat32`, then `FrozenEncoding.encode` (q8 blocks of 32 along the
    /// flat order, which are the rows' blocks when a row is a multiple of 32).
    public func encodeFromFloat32(_ name: String, as dtype: BaseDType, into out: UnsafeMutableRawBufferPointer) throws {
        guard let info = info(name) else { throw PilotError.notFound(file: location(of: name), object: name) }
        let n = info.count
        guard out.count == dtype.bytes(rows: 1, cols: n) else {
            throw PilotError.invalidArgument("\(location(of: name)): tensor '\(name)' in \(dtype.rawValue) takes \(dtype.bytes(rows: 1, cols: n)) bytes, the destination \(out.count)")
        }
        if dtype == .f32 {
            try readFloat32(name, into: out.bindMemory(to: Float.self))
            return
        }
        let values = UnsafeMutableBufferPointer<Float>.allocate(capacity: max(n, 1))
        defer { values.deallocate() }
        try readFloat32(name, into: UnsafeMutableBufferPointer(rebasing: values[0..<n]))
        if n > 0 { FrozenEncoding.encode(UnsafeBufferPointer(rebasing: values[0..<n]), as: dtype, into: out.baseAddress!) }
    }
}
