import Foundation

/// Decodes a `Codable` record from a result row: its property names are the table's columns.
struct RowDecoder: Decoder {
    let row: SQLRow
    var codingPath: [any CodingKey] = []
    var userInfo: [CodingUserInfoKey: Any] = [:]

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        KeyedDecodingContainer(Keyed<Key>(row: row))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        throw DecodingError.typeMismatch([Any].self, .init(codingPath: codingPath, debugDescription: "rows are keyed"))
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer {
        throw DecodingError.typeMismatch(Any.self, .init(codingPath: codingPath, debugDescription: "rows are keyed"))
    }

    struct Keyed<Key: CodingKey>: KeyedDecodingContainerProtocol {
        let row: SQLRow
        var codingPath: [any CodingKey] { [] }
        var allKeys: [Key] { row.values.keys.compactMap { Key(stringValue: $0) } }

        func contains(_ key: Key) -> Bool { row.values[key.stringValue.lowercased()] != nil }
        func decodeNil(forKey key: Key) throws -> Bool { row[key.stringValue].isNull }

        func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
            try ValueDecoder(value: row[key.stringValue], key: key).decode(type)
        }

        func nestedContainer<N: CodingKey>(keyedBy type: N.Type, forKey key: Key) throws -> KeyedDecodingContainer<N> { throw flat(key) }
        func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer { throw flat(key) }
        func superDecoder() throws -> any Decoder { throw flat(nil) }
        func superDecoder(forKey key: Key) throws -> any Decoder { throw flat(key) }

        private func flat(_ key: Key?) -> DecodingError {
            DecodingError.typeMismatch(Any.self, .init(codingPath: key.map { [$0] } ?? [], debugDescription: "catalog records are flat"))
        }
    }

    /// One column's value, decoded to the property's type (enums through their raw values).
    struct ValueDecoder: Decoder, SingleValueDecodingContainer {
        let value: SQLValue
        let key: any CodingKey
        var codingPath: [any CodingKey] { [key] }
        var userInfo: [CodingUserInfoKey: Any] { [:] }

        func container<K: CodingKey>(keyedBy type: K.Type) throws -> KeyedDecodingContainer<K> { throw mismatch(type) }
        func unkeyedContainer() throws -> any UnkeyedDecodingContainer { throw mismatch([Any].self) }
        func singleValueContainer() throws -> any SingleValueDecodingContainer { self }

        func mismatch(_ type: Any.Type) -> DecodingError {
            DecodingError.typeMismatch(type, .init(codingPath: codingPath, debugDescription: "column \(key.stringValue) holds \(value)"))
        }

        func decodeNil() -> Bool { value.isNull }
        func decode(_ type: Bool.Type) throws -> Bool { guard let v = value.int64 else { throw mismatch(type) }; return v != 0 }
        func decode(_ type: String.Type) throws -> String { guard let v = value.string else { throw mismatch(type) }; return v }
        func decode(_ type: Double.Type) throws -> Double { guard let v = value.double else { throw mismatch(type) }; return v }
        func decode(_ type: Float.Type) throws -> Float { Float(try decode(Double.self)) }
        func decode(_ type: Int.Type) throws -> Int { guard let v = value.int64 else { throw mismatch(type) }; return Int(v) }
        func decode(_ type: Int64.Type) throws -> Int64 { guard let v = value.int64 else { throw mismatch(type) }; return v }
        func decode<T: Decodable>(_ type: T.Type) throws -> T {
            if type == Date.self { guard let d = value.date else { throw mismatch(type) }; return d as! T }
            if type == Data.self { guard let d = value.data else { throw mismatch(type) }; return d as! T }
            if type == Int64.self { return try decode(Int64.self) as! T }
            return try T(from: self)
        }
    }
}

/// Turns a `Codable` record into its columns and values, in declaration order.
struct RowEncoder: Encoder {
    final class Storage { var columns: [(String, SQLValue)] = [] }
    let storage = Storage()
    var codingPath: [any CodingKey] = []
    var userInfo: [CodingUserInfoKey: Any] = [:]

    static func columns(of value: some Encodable) throws -> [(String, SQLValue)] {
        let encoder = RowEncoder()
        try value.encode(to: encoder)
        return encoder.storage.columns
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        KeyedEncodingContainer(Keyed<Key>(storage: storage))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer { fatalError("catalog records are flat") }
    func singleValueContainer() -> any SingleValueEncodingContainer { fatalError("catalog records are flat") }

    struct Keyed<Key: CodingKey>: KeyedEncodingContainerProtocol {
        let storage: Storage
        var codingPath: [any CodingKey] { [] }

        mutating func encodeNil(forKey key: Key) { storage.columns.append((key.stringValue, .null)) }
        mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
            storage.columns.append((key.stringValue, try ValueEncoder.value(of: value)))
        }
        // Optionals: `encodeIfPresent` would leave the column out; an update must set it to NULL.
        mutating func encodeIfPresent<T: Encodable>(_ value: T?, forKey key: Key) throws {
            if let value { try encode(value, forKey: key) } else { encodeNil(forKey: key) }
        }
        mutating func encodeIfPresent(_ value: String?, forKey key: Key) throws { try encodeIfPresent(value as String?, key) }
        mutating func encodeIfPresent(_ value: Int?, forKey key: Key) throws { try encodeIfPresent(value as Int?, key) }
        mutating func encodeIfPresent(_ value: Int64?, forKey key: Key) throws { try encodeIfPresent(value as Int64?, key) }
        mutating func encodeIfPresent(_ value: Double?, forKey key: Key) throws { try encodeIfPresent(value as Double?, key) }
        mutating func encodeIfPresent(_ value: Bool?, forKey key: Key) throws { try encodeIfPresent(value as Bool?, key) }
        private mutating func encodeIfPresent<T: Encodable>(_ value: T?, _ key: Key) throws {
            if let value { try encode(value, forKey: key) } else { encodeNil(forKey: key) }
        }
        mutating func nestedContainer<N: CodingKey>(keyedBy keyType: N.Type, forKey key: Key) -> KeyedEncodingContainer<N> {
            fatalError("catalog records are flat")
        }
        mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer { fatalError("catalog records are flat") }
        mutating func superEncoder() -> any Encoder { fatalError("catalog records are flat") }
        mutating func superEncoder(forKey key: Key) -> any Encoder { fatalError("catalog records are flat") }
    }

    /// A single value (enums encode their raw value through it).
    final class ValueEncoder: Encoder, SingleValueEncodingContainer {
        var value: SQLValue = .null
        var codingPath: [any CodingKey] { [] }
        var userInfo: [CodingUserInfoKey: Any] { [:] }

        static func value(of value: some Encodable) throws -> SQLValue {
            if let bindable = value as? any SQLBindable { return bindable.sqlValue }
            let encoder = ValueEncoder()
            try value.encode(to: encoder)
            return encoder.value
        }

        func container<K: CodingKey>(keyedBy type: K.Type) -> KeyedEncodingContainer<K> { fatalError("catalog values are scalars") }
        func unkeyedContainer() -> any UnkeyedEncodingContainer { fatalError("catalog values are scalars") }
        func singleValueContainer() -> any SingleValueEncodingContainer { self }

        func encodeNil() { value = .null }
        func encode(_ v: Bool) { value = v.sqlValue }
        func encode(_ v: String) { value = .text(v) }
        func encode(_ v: Double) { value = .real(v) }
        func encode(_ v: Float) { value = .real(Double(v)) }
        func encode(_ v: Int) { value = .integer(Int64(v)) }
        func encode(_ v: Int64) { value = .integer(v) }
        func encode<T: Encodable>(_ v: T) throws { value = try ValueEncoder.value(of: v) }
    }
}
