import Foundation
import GRDB

/// The embedded engine: one SQLite file in WAL mode through GRDB. Writers are serialised by SQLite,
/// readers run concurrently.
final class SQLiteDatabase: CatalogDatabase {
    let pool: DatabasePool
    var dialect: SQLDialect { .sqlite }

    init(path: String) throws {
        var config = Configuration()
        config.prepareDatabase { db in
            db.add(function: DatabaseFunction("hamming", argumentCount: 2, pure: true) { values in
                guard let a = Int64.fromDatabaseValue(values[0]), let b = Int64.fromDatabaseValue(values[1]) else { return nil }
                return (a ^ b).nonzeroBitCount
            })
            // Durable on commit: an acknowledged upload must survive power loss, not only a crash.
            try db.execute(sql: "PRAGMA synchronous = FULL")
        }
        config.busyMode = .timeout(10)
        pool = try DatabasePool(path: path, configuration: config)
        try SQLiteMigrations.migrator.migrate(pool)
    }

    /// With `durable: false` the commit is not flushed (`synchronous = NORMAL`): it survives a crash of the
    /// process (kill -9) but not necessarily of the machine, and it becomes durable with the next durable
    /// commit, since the WAL is written in order. Every write sets its own level before its transaction
    /// (the pragma does no I/O), so a level is never left behind for the next write.
    func write<T: Sendable>(durable: Bool, _ body: (Tx) throws -> T) throws -> T {
        try pool.writeWithoutTransaction { db in
            try db.execute(sql: durable ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL")
            var value: T?
            try db.inTransaction {
                value = try body(Tx(connection: Connection(db: db)))
                return .commit
            }
            return value!
        }
    }

    func read<T: Sendable>(_ body: (Tx) throws -> T) throws -> T {
        try pool.read { db in try body(Tx(connection: Connection(db: db))) }
    }

    func ping() throws { _ = try pool.read { db in try Int.fetchOne(db, sql: "SELECT 1") } }

    func close() { try? pool.close() }

    struct Connection: SQLConnection {
        let db: Database
        var dialect: SQLDialect { .sqlite }

        func query(_ sql: String, _ arguments: [SQLValue]) throws -> [SQLRow] {
            try Row.fetchAll(db.cachedStatement(sql: sql), arguments: StatementArguments(arguments.map(\.databaseValue))).map { row in
                SQLRow(zip(row.columnNames, row.databaseValues).map { ($0, SQLValue($1)) })
            }
        }

        func execute(_ sql: String, _ arguments: [SQLValue]) throws {
            try db.cachedStatement(sql: sql).execute(arguments: StatementArguments(arguments.map(\.databaseValue)))
        }
    }
}

extension SQLValue {
    init(_ value: DatabaseValue) {
        switch value.storage {
        case .null: self = .null
        case .int64(let v): self = .integer(v)
        case .double(let v): self = .real(v)
        case .string(let v): self = .text(v)
        case .blob(let v): self = .blob(v)
        }
    }

    var databaseValue: DatabaseValue {
        switch self {
        case .null: .null
        case .integer(let v): v.databaseValue
        case .real(let v): v.databaseValue
        case .text(let v): v.databaseValue
        case .blob(let v): v.databaseValue
        case .date(let v): v.databaseValue
        }
    }
}
