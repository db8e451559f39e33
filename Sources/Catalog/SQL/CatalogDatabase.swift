import Foundation
import HubCore

/// The SQL dialect a statement is written for; the catalog writes portable SQL and asks this only for
/// the few fragments the engines spell differently.
public enum SQLDialect: String, Sendable {
    case sqlite
    case postgres
}

/// One engine's connection inside a transaction: runs statements written with `?` placeholders.
protocol SQLConnection {
    var dialect: SQLDialect { get }
    func query(_ sql: String, _ arguments: [SQLValue]) throws -> [SQLRow]
    func execute(_ sql: String, _ arguments: [SQLValue]) throws
}

/// The seam between the catalog and an engine: transactions, and nothing else. The catalog's behaviour
/// is written once, on `Tx`; an engine only runs statements (SQLite through GRDB, PostgreSQL through
/// PostgresNIO).
protocol CatalogDatabase: Sendable {
    var dialect: SQLDialect { get }
    /// Runs `body` against a consistent snapshot.
    func read<T: Sendable>(_ body: (Tx) throws -> T) throws -> T
    /// Runs `body` in a write transaction, retried from the start when the engine reports a conflict
    /// with a concurrent writer; with `durable: false` the commit is not waited onto the disk.
    func write<T: Sendable>(durable: Bool, _ body: (Tx) throws -> T) throws -> T
    /// Whether the engine answers now.
    func ping() throws
    /// Closes connections; later calls fail.
    func close()
}

/// A record stored in one catalog table; its `Codable` property names are the columns.
protocol CatalogRecord: Codable, Sendable {
    static var table: String { get }
}

/// A transaction, with the helpers every catalog method uses.
/// One SQL statement with its arguments.
struct Statement {
    var sql: String
    var arguments: [any SQLBindable]
    init(_ sql: String, _ arguments: [any SQLBindable] = []) { self.sql = sql; self.arguments = arguments }
}

struct Tx {
    let connection: any SQLConnection
    var dialect: SQLDialect { connection.dialect }

    func rows(_ sql: String, _ arguments: [any SQLBindable] = []) throws -> [SQLRow] {
        try connection.query(sql, arguments.map(\.sqlValue))
    }

    func row(_ sql: String, _ arguments: [any SQLBindable] = []) throws -> SQLRow? {
        try rows(sql, arguments).first
    }

    func execute(_ sql: String, _ arguments: [any SQLBindable] = []) throws {
        try connection.execute(sql, arguments.map(\.sqlValue))
    }

    /// The first column of the first row.
    func scalar(_ sql: String, _ arguments: [any SQLBindable] = []) throws -> SQLValue {
        try row(sql, arguments)?.first ?? .null
    }

    func int(_ sql: String, _ arguments: [any SQLBindable] = []) throws -> Int64? { try scalar(sql, arguments).int64 }

    func all<R: CatalogRecord>(_ type: R.Type, _ sql: String, _ arguments: [any SQLBindable] = []) throws -> [R] {
        try rows(sql, arguments).map { try R(from: RowDecoder(row: $0)) }
    }

    func one<R: CatalogRecord>(_ type: R.Type, _ sql: String, _ arguments: [any SQLBindable] = []) throws -> R? {
        try row(sql, arguments).map { try R(from: RowDecoder(row: $0)) }
    }

    /// The record whose `column` is `key` (locked for the rest of a write transaction on PostgreSQL
    /// when `forUpdate`).
    func find<R: CatalogRecord>(_ type: R.Type, _ key: any SQLBindable, column: String = "id", forUpdate: Bool = false) throws -> R? {
        try one(type, "SELECT * FROM \(R.table) WHERE \(column) = ?\(forUpdate ? lockRows : "")", [key])
    }

    /// The records whose ids are in `keys` (any order).
    func find<R: CatalogRecord>(_ type: R.Type, ids keys: [any SQLBindable]) throws -> [R] {
        guard !keys.isEmpty else { return [] }
        var found: [R] = []
        // In slices: SQLite allows at most 32,766 parameters a statement.
        for start in stride(from: 0, to: keys.count, by: 500) {
            let slice = Array(keys[start..<min(start + 500, keys.count)])
            found += try all(type, "SELECT * FROM \(R.table) WHERE id IN (\(placeholders(slice.count)))", slice)
        }
        return found
    }

    /// Inserts a record. A nil `id` is left to the table (an auto-incremented key), which is returned.
    @discardableResult
    func insert<R: CatalogRecord>(_ record: R) throws -> Int64? {
        var columns = try RowEncoder.columns(of: record)
        let generated = columns.contains { $0.0 == "id" && $0.1.isNull }
        if generated { columns.removeAll { $0.0 == "id" } }
        if generated {
            let sql = "INSERT INTO \(R.table) (\(columns.map { quote($0.0) }.joined(separator: ", "))) VALUES (\(placeholders(columns.count))) RETURNING id"
            return try connection.query(sql, columns.map(\.1)).first?.int("id")
        }
        try insertRow(into: R.table, columns)
        return nil
    }

    /// Inserts a row given as columns and values.
    func insertRow(into table: String, _ columns: [(String, SQLValue)]) throws {
        try connection.execute("INSERT INTO \(table) (\(columns.map { quote($0.0) }.joined(separator: ", "))) VALUES (\(placeholders(columns.count)))",
                               columns.map(\.1))
    }

    /// Inserts a record unless it would break a unique constraint; whether it went in.
    func insertIfAbsent<R: CatalogRecord>(_ record: R) throws -> Bool {
        let columns = try RowEncoder.columns(of: record)
        let sql = "INSERT INTO \(R.table) (\(columns.map { quote($0.0) }.joined(separator: ", "))) VALUES (\(placeholders(columns.count))) "
            + "ON CONFLICT DO NOTHING RETURNING 1 AS inserted"
        return try !connection.query(sql, columns.map(\.1)).isEmpty
    }

    /// Writes every column of a record back, by its key column.
    func update<R: CatalogRecord>(_ record: R, key: String = "id") throws {
        let statement = try updateStatement(record, key: key)
        try connection.execute(statement.sql, statement.arguments.map(\.sqlValue))
    }

    /// The statement `update` runs.
    func updateStatement<R: CatalogRecord>(_ record: R, key: String = "id") throws -> Statement {
        let columns = try RowEncoder.columns(of: record)
        guard let keyValue = columns.first(where: { $0.0 == key })?.1 else {
            throw HubError(500, "internal.record", "\(R.table) has no column \(key)")
        }
        let sets = columns.filter { $0.0 != key }
        return Statement("UPDATE \(R.table) SET \(sets.map { "\(quote($0.0)) = ?" }.joined(separator: ", ")) WHERE \(quote(key)) = ?",
                         sets.map(\.1) + [keyValue])
    }

    /// Runs writes to different rows as one round trip on PostgreSQL (all but the last as data-modifying
    /// `WITH` parts, which see the rows as they were before the statement), one by one on SQLite. Returns
    /// the last statement's rows.
    @discardableResult
    func together(_ statements: [Statement]) throws -> [SQLRow] {
        guard let last = statements.last else { return [] }
        if dialect == .postgres, statements.count > 1 {
            let parts = statements.dropLast().enumerated().map { "w\($0.offset) AS (\($0.element.sql))" }
            return try rows("WITH \(parts.joined(separator: ", ")) \(last.sql)", statements.flatMap(\.arguments))
        }
        for statement in statements.dropLast() { try execute(statement.sql, statement.arguments) }
        return try rows(last.sql, last.arguments)
    }

    /// `?, ?, …`
    func placeholders(_ count: Int) -> String { Array(repeating: "?", count: count).joined(separator: ", ") }

    /// A column name as the engine stores it (PostgreSQL folds unquoted names to lower case; quoting
    /// keeps words such as `offset` usable).
    func quote(_ column: String) -> String {
        "\"\(dialect == .postgres ? column.lowercased() : column)\""
    }

    /// Appended to a `SELECT` in a write transaction: locks the rows it returns until the commit
    /// (SQLite has one writer at a time, so it needs nothing).
    var lockRows: String { dialect == .postgres ? " FOR UPDATE" : "" }

    /// Appended to a job queue's `SELECT`: rows another node holds are passed over, not waited for.
    var skipLocked: String { dialect == .postgres ? " FOR UPDATE SKIP LOCKED" : "" }

    /// Serialises the commit-time checks across nodes (near duplicates by hash and by embedding, label
    /// checks, the embeddings' sequence): held until the transaction ends. On SQLite, where writers
    /// are already serialised, it does nothing.
    func serializeCommits() throws {
        if dialect == .postgres { try execute("SELECT pg_advisory_xact_lock(\(Tx.commitLock))") }
    }

    /// Taken by the transaction that fires watches, so each fires once whichever node checks.
    func serializeWatches() throws {
        if dialect == .postgres { try execute("SELECT pg_advisory_xact_lock(\(Tx.watchLock))") }
    }

    static let commitLock: Int64 = 0x696d_6167_6568_0001
    static let watchLock: Int64 = 0x696d_6167_6568_0002
    static let migrationLock: Int64 = 0x696d_6167_6568_0003
}
