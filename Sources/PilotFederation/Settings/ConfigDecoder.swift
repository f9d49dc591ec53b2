import PilotCore

/// Decodes one section of a validated `RunConfig` (`[train]`, `[pilot]`, …) into a `Decodable`
/// struct: a field `lrStage1` reads the key `train.lr_stage1` (camelCase → snake_case, as
/// JSONDecoder's `convertFromSnakeCase`), an optional field reads nil where the config leaves an
/// optional key out, and a `RawRepresentable` enum reads its raw string. This is the one place
/// that looks config keys up by name; the schema (`ConfigSection.keys`) has already checked every
/// value's type and range, so a failure here is a bug in a section struct, reported with the key.
struct ConfigDecoder: Decoder {
    let section: String
    let values: [String: ConfigFile.Value]
    /// Every key a decode asked for (tests check that the structs and the schema agree).
    let requested: Recorder
    var codingPath: [any CodingKey] = []
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    final class Recorder { var keys: [String] = [] }

    init(section: String, values: [String: ConfigFile.Value], requested: Recorder = Recorder()) {
        self.section = section; self.values = values; self.requested = requested
    }

    static func key(_ field: String) -> String {
        var out = ""
        for ch in field {
            if ch.isUppercase { out += "_" + ch.lowercased() } else { out.append(ch) }
        }
        return out
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        KeyedDecodingContainer(Section<Key>(decoder: self))
    }
    func unkeyedContainer() throws -> any UnkeyedDecodingContainer { throw Self.unsupported(section) }
    func singleValueContainer() throws -> any SingleValueDecodingContainer { throw Self.unsupported(section) }

    static func unsupported(_ what: String) -> PilotError {
        PilotError.message("config decoding: '\(what)' is not a scalar, a list of strings or a section (a bug in a settings struct)")
    }

    struct Section<Key: CodingKey>: KeyedDecodingContainerProtocol {
        let decoder: ConfigDecoder
        var codingPath: [any CodingKey] { decoder.codingPath }
        var allKeys: [Key] { [] }

        func name(_ key: Key) -> String {
            let name = decoder.section + "." + ConfigDecoder.key(key.stringValue)
            decoder.requested.keys.append(name)
            return name
        }
        func contains(_ key: Key) -> Bool { decoder.values[name(key)] != nil }
        func decodeNil(forKey key: Key) throws -> Bool { decoder.values[name(key)] == nil }
        func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
            let name = name(key)
            guard let value = decoder.values[name] else {
                throw PilotError.message("config decoding: '\(name)' has no value (a required key without a default in the schema)")
            }
            return try T(from: Scalar(name: name, value: value))
        }
        func nestedContainer<N: CodingKey>(keyedBy type: N.Type, forKey key: Key) throws -> KeyedDecodingContainer<N> {
            throw ConfigDecoder.unsupported(name(key))
        }
        func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer { throw ConfigDecoder.unsupported(name(key)) }
        func superDecoder() throws -> any Decoder { decoder }
        func superDecoder(forKey key: Key) throws -> any Decoder { decoder }
    }

    /// One value: Bool, Int, Double, Float, String, an enum over String, or a list of strings.
    struct Scalar: Decoder, SingleValueDecodingContainer {
        let name: String
        let value: ConfigFile.Value
        var codingPath: [any CodingKey] { [] }
        var userInfo: [CodingUserInfoKey: Any] { [:] }

        func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> { throw ConfigDecoder.unsupported(name) }
        func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
            guard case let .array(items) = value else { throw mismatch("a list") }
            return List(name: name, items: items)
        }
        func singleValueContainer() throws -> any SingleValueDecodingContainer { self }

        func mismatch(_ expected: String) -> PilotError {
            PilotError.message("config decoding: '\(name)' is \(value), not \(expected) (a bug in a settings struct)")
        }
        func decodeNil() -> Bool { false }
        func decode(_ type: Bool.Type) throws -> Bool { if case let .bool(b) = value { return b }; throw mismatch("true or false") }
        func decode(_ type: String.Type) throws -> String { if case let .string(s) = value { return s }; throw mismatch("a string") }
        func decode(_ type: Int.Type) throws -> Int { if case let .int(i) = value { return i }; throw mismatch("an integer") }
        func decode(_ type: Double.Type) throws -> Double {
            switch value {
            case let .double(d): return d
            case let .int(i): return Double(i)
            default: throw mismatch("a number")
            }
        }
        func decode(_ type: Float.Type) throws -> Float { Float(try decode(Double.self)) }
        func decode<T: Decodable>(_ type: T.Type) throws -> T { try T(from: self) }
    }

    struct List: UnkeyedDecodingContainer {
        let name: String
        let items: [ConfigFile.Value]
        var codingPath: [any CodingKey] { [] }
        var count: Int? { items.count }
        var isAtEnd: Bool { currentIndex >= items.count }
        var currentIndex = 0

        mutating func decodeNil() throws -> Bool { false }
        mutating func decode<T: Decodable>(_ type: T.Type) throws -> T {
            defer { currentIndex += 1 }
            return try T(from: Scalar(name: "\(name)[\(currentIndex)]", value: items[currentIndex]))
        }
        mutating func nestedContainer<N: CodingKey>(keyedBy type: N.Type) throws -> KeyedDecodingContainer<N> { throw ConfigDecoder.unsupported(name) }
        mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer { throw ConfigDecoder.unsupported(name) }
        mutating func superDecoder() throws -> any Decoder { throw ConfigDecoder.unsupported(name) }
    }
}
