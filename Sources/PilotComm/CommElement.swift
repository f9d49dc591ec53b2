/// Element types that can cross a communicator.
public enum ElementKind: String, Sendable {
    case float32, float64, int64, uint8
}

public enum ReduceOp: String, Sendable {
    case sum, max
}

/// Float, Double and Int64 carry tensors and scalars; UInt8 carries text (config, names).
public protocol CommElement: Sendable, Equatable {
    static var kind: ElementKind { get }
    static var zero: Self { get }
    static func combine(_ a: Self, _ b: Self, _ op: ReduceOp) -> Self
}

extension Float: CommElement {
    public static var kind: ElementKind { .float32 }
    @inlinable public static func combine(_ a: Float, _ b: Float, _ op: ReduceOp) -> Float {
        op == .sum ? a + b : Swift.max(a, b)
    }
}

extension Double: CommElement {
    public static var kind: ElementKind { .float64 }
    @inlinable public static func combine(_ a: Double, _ b: Double, _ op: ReduceOp) -> Double {
        op == .sum ? a + b : Swift.max(a, b)
    }
}

extension Int64: CommElement {
    public static var kind: ElementKind { .int64 }
    @inlinable public static func combine(_ a: Int64, _ b: Int64, _ op: ReduceOp) -> Int64 {
        op == .sum ? a &+ b : Swift.max(a, b)
    }
}

extension UInt8: CommElement {
    public static var kind: ElementKind { .uint8 }
    @inlinable public static func combine(_ a: UInt8, _ b: UInt8, _ op: ReduceOp) -> UInt8 {
        op == .sum ? a &+ b : Swift.max(a, b)
    }
}

/// The single definition of "reduce in rank order": acc = x₀, then acc = acc ⊕ xᵣ for r = 1, 2, ….
/// Both communicators call this, so an in-process run and an MPI run of the same inputs give the
/// same bits, and neither depends on MPI's choice of reduction tree.
public func reduceInRankOrder<T: CommElement>(_ contributions: [UnsafeBufferPointer<T>], op: ReduceOp,
                                              into out: UnsafeMutableBufferPointer<T>) {
    guard let first = contributions.first else { return }
    for i in 0..<out.count { out[i] = first[i] }
    for r in contributions.indices.dropFirst() {
        let src = contributions[r]
        for i in 0..<out.count { out[i] = T.combine(out[i], src[i], op) }
    }
}
