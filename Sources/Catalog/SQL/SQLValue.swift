import Foundation
import GRDB

/// A value bound to or read from a catalog statement, the same for both engines.
public enum SQLValue: Sendable, Equatable {
    case null
    case integer(Int64)
    case real(Double)
    case text(String)
    case blob(Data)
    case date(Date)
}

/// A Swift value that can be bound to a statement.
public protocol SQLBindable: Sendable {
    var sqlValue: SQLValue { get }
}

extension Int: SQLBindable { public var sqlValue: SQLValue { .integer(Int64(self)) } }
extension Int64: SQLBindable { public var sqlValue: SQLValue { .integer(self) } }
extension Double: SQLBindable { public var sqlValue: SQLValue { .real(self) } }
extension String: SQLBindable { public var sqlValue: SQLValue { .text(self) } }
extension Data: SQLBindable { public var sqlValue: SQLValue { .blob(self) } }
extension Date: SQLBindable { public var sqlValue: SQLValue { .date(self) } }
extension Bool: SQLBindable { public var sqlValue: SQLValue { .integer(self ? 1 : 0) } }
extension SQLValue: SQLBindable { public var sqlValue: SQLValue { self } }
extension Optional: SQLBindable where Wrapped: SQLBindable {
    public var sqlValue: SQLValue { self?.sqlValue ?? .null }
}

extension SQLValue {
    var int64: Int64? {
        switch self {
        case .integer(let v): v
        case .real(let v): Int64(exactly: v)
        case .text(let s): Int64(s)
        default: nil
        }
    }

    var double: Double? {
        switch self {
        case .integer(let v): Double(v)
        case .real(let v): v
        case .text(let s): Double(s)
        default: nil
        }
    }

    var string: String? {
        switch self {
        case .text(let s): s
        case .integer(let v): String(v)
        case .real(let v): String(v)
        case .blob(let d): String(decoding: d, as: UTF8.self)
        default: nil
        }
    }

    var data: Data? {
        switch self {
        case .blob(let d): d
        case .text(let s): Data(s.utf8)
        default: nil
        }
    }

    /// SQLite keeps dates as GRDB's text (`yyyy-MM-dd HH:mm:ss.SSS`, UTC), PostgreSQL as `timestamptz`.
    var date: Date? {
        switch self {
        case .date(let d): d
        case .text(let s): Date.fromDatabaseValue(s.databaseValue)
        case .real(let v): Date(timeIntervalSince1970: v)
        case .integer(let v): Date(timeIntervalSince1970: Double(v))
        default: nil
        }
    }

    var isNull: Bool { if case .null = self { true } else { false } }
}

/// One result row; columns are looked up case-insensitively (PostgreSQL folds unquoted names to lower case).
public struct SQLRow: Sendable {
    let values: [String: SQLValue]
    /// The columns with their values, in the result's order.
    let columns: [(String, SQLValue)]

    init(_ pairs: [(String, SQLValue)]) {
        var values: [String: SQLValue] = [:]
        for (name, value) in pairs { values[name.lowercased()] = value }
        self.values = values
        columns = pairs
    }

    subscript(_ column: String) -> SQLValue { values[column.lowercased()] ?? .null }

    func int(_ column: String) -> Int64? { self[column].int64 }
    func string(_ column: String) -> String? { self[column].string }
    func double(_ column: String) -> Double? { self[column].double }
    func data(_ column: String) -> Data? { self[column].data }
    func date(_ column: String) -> Date? { self[column].date }
    /// The first column of a one-column result.
    var first: SQLValue { columns.first?.1 ?? .null }

    /// The columns before the one named `marker` and those after it: a row that joins two records, in the
    /// result's order.
    func split(at marker: String) -> (SQLRow, SQLRow) {
        guard let i = columns.firstIndex(where: { $0.0.lowercased() == marker.lowercased() }) else { return (self, SQLRow([])) }
        return (SQLRow(Array(columns[..<i])), SQLRow(Array(columns[(i + 1)...])))
    }
}
