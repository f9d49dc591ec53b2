import PilotCore

/// Float32 storage, 64-byte aligned so that OpenBLAS and the vectorised loops see aligned rows.
/// Owned by a class so that many `Tensor` views can share one allocation (the model keeps all
/// trainable parameters in one of these and hands out named views).
public final class TensorStorage: @unchecked Sendable {
    public let count: Int
    public let base: UnsafeMutablePointer<Float>

    public init(count: Int) {
        precondition(count >= 0, "TensorStorage count must be non-negative")
        self.count = count
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * MemoryLayout<Float>.stride, alignment: 64)
        base = raw.bindMemory(to: Float.self, capacity: max(count, 1))
        base.initialize(repeating: 0, count: max(count, 1))
    }

    deinit { UnsafeMutableRawPointer(base).deallocate() }
}

/// A flat float32 buffer with a row-major shape: either a whole allocation or a view into one.
/// Value semantics are deliberately *not* provided: copying a `Tensor` copies the view, and both
/// views alias the same memory, as in llm.c's parameter tensors. Use `copy()` for a deep copy.
public struct Tensor: @unchecked Sendable, CustomStringConvertible {
    public let storage: TensorStorage
    public let offset: Int
    public let shape: [Int]
    public let count: Int

    /// A new zero-filled tensor.
    public init(shape: [Int]) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in shape \(shape)")
        let n = shape.reduce(1, *)
        storage = TensorStorage(count: n)
        offset = 0
        self.shape = shape
        count = n
    }

    /// A new tensor holding `values`; `values.count` must equal the product of `shape`.
    public init(shape: [Int], values: [Float]) {
        self.init(shape: shape)
        precondition(values.count == count, "Tensor(shape: \(shape)) needs \(count) values, got \(values.count)")
        values.withUnsafeBufferPointer { storage.base.update(from: $0.baseAddress!, count: count) }
    }

    /// A view of `count(shape)` elements of `storage` starting at `offset`.
    public init(view storage: TensorStorage, offset: Int, shape: [Int]) {
        let n = shape.reduce(1, *)
        precondition(offset >= 0 && offset + n <= storage.count, "view [\(offset), \(offset + n)) outside storage of \(storage.count)")
        self.storage = storage
        self.offset = offset
        self.shape = shape
        count = n
    }

    @inlinable public var pointer: UnsafeMutablePointer<Float> { storage.base + offset }
    @inlinable public var buffer: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: pointer, count: count) }

    public var values: [Float] { Array(buffer) }

    public subscript(i: Int) -> Float {
        get { precondition(i >= 0 && i < count); return pointer[i] }
        nonmutating set { precondition(i >= 0 && i < count); pointer[i] = newValue }
    }

    /// Same memory, another shape with the same element count.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        precondition(newShape.reduce(1, *) == count, "cannot reshape \(shape) to \(newShape)")
        return Tensor(view: storage, offset: offset, shape: newShape)
    }

    /// A deep copy in a fresh allocation.
    public func copy() -> Tensor {
        let t = Tensor(shape: shape)
        t.pointer.update(from: pointer, count: count)
        return t
    }

    public func fill(_ value: Float) { pointer.update(repeating: value, count: count) }
    public func zero() { fill(0) }

    public var description: String {
        let head = buffer.prefix(6).map { String($0) }.joined(separator: ", ")
        return "Tensor\(shape)[\(head)\(count > 6 ? ", …" : "")]"
    }
}
