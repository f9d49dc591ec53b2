import CHDF5

/// Element types a dataset can hold: float32, float64, int64, int32 and uint8.
public protocol H5Element: Sendable, Equatable {
    static var typeName: String { get }
    /// Type used in memory (native byte order).
    static var memoryType: hid_t { get }
    /// Type stored in the file (little-endian, fixed width), so files are portable.
    static var fileType: hid_t { get }
    static var typeClass: H5T_class_t { get }
    static var zero: Self { get }
}

extension Float: H5Element {
    public static var typeName: String { "float32" }
    public static var memoryType: hid_t { pilot_H5T_NATIVE_FLOAT() }
    public static var fileType: hid_t { pilot_H5T_IEEE_F32LE() }
    public static var typeClass: H5T_class_t { H5T_FLOAT }
}

extension Double: H5Element {
    public static var typeName: String { "float64" }
    public static var memoryType: hid_t { pilot_H5T_NATIVE_DOUBLE() }
    public static var fileType: hid_t { pilot_H5T_IEEE_F64LE() }
    public static var typeClass: H5T_class_t { H5T_FLOAT }
}

extension Int64: H5Element {
    public static var typeName: String { "int64" }
    public static var memoryType: hid_t { pilot_H5T_NATIVE_INT64() }
    public static var fileType: hid_t { pilot_H5T_STD_I64LE() }
    public static var typeClass: H5T_class_t { H5T_INTEGER }
}

/// int32 is read for files from other tools (h5py writes numpy int32 token ids); pilot itself
/// stores integers as int64.
extension Int32: H5Element {
    public static var typeName: String { "int32" }
    public static var memoryType: hid_t { pilot_H5T_NATIVE_INT32() }
    public static var fileType: hid_t { pilot_H5T_STD_I32LE() }
    public static var typeClass: H5T_class_t { H5T_INTEGER }
}

extension UInt8: H5Element {
    public static var typeName: String { "uint8" }
    public static var memoryType: hid_t { pilot_H5T_NATIVE_UINT8() }
    public static var fileType: hid_t { pilot_H5T_STD_U8LE() }
    public static var typeClass: H5T_class_t { H5T_INTEGER }
}

/// A dataset read back with its shape (row-major; [] for a scalar).
public struct H5Array<T: H5Element>: Sendable, Equatable {
    public let shape: [Int]
    public let values: [T]
    public init(shape: [Int], values: [T]) {
        self.shape = shape
        self.values = values
    }
}

/// Attribute values: scalars, arrays and variable-length UTF-8 strings (h5py reads them as `str`).
public enum H5AttributeValue: Sendable, Equatable, CustomStringConvertible {
    case int(Int64)
    case double(Double)
    case string(String)
    case ints([Int64])
    case doubles([Double])
    case strings([String])

    public var description: String {
        switch self {
        case .int(let v): return "\(v)"
        case .double(let v): return "\(v)"
        case .string(let v): return "\"\(v)\""
        case .ints(let v): return "\(v)"
        case .doubles(let v): return "\(v)"
        case .strings(let v): return "\(v)"
        }
    }

    public var intValue: Int64? { if case .int(let v) = self { return v }; return nil }
    public var doubleValue: Double? {
        switch self { case .double(let v): return v; case .int(let v): return Double(v); default: return nil }
    }
    public var stringValue: String? { if case .string(let v) = self { return v }; return nil }
}

/// What a dataset holds, without reading it.
public struct H5DatasetInfo: Sendable, Equatable {
    public let typeName: String
    public let shape: [Int]
    public var count: Int { shape.reduce(1, *) }
    public init(typeName: String, shape: [Int]) {
        self.typeName = typeName
        self.shape = shape
    }
}
