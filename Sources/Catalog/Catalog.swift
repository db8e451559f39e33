import Foundation
import GRDB
import HubCore

/// The hub's state: labels, users, batches, images and jobs, in one SQLite file (WAL).
/// Every method is one transaction; writers are serialised by SQLite, readers run concurrently.
public final class Catalog: Sendable {
    let pool: DatabasePool

    /// Opens (creating and migrating) the catalog at `path`.
    public init(path: String) throws {
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
        try Migrations.migrator.migrate(pool)
    }

    /// Runs `body` in a write transaction, durable when it commits (fsync of the WAL).
    ///
    /// With `durable: false` the commit is not flushed (`synchronous = NORMAL`): it survives a crash of the
    /// process (kill -9) but not necessarily of the machine, and it becomes durable with the next durable
    /// commit, since the WAL is written in order. For work that is safe to redo: a job claimed or finished
    /// and then forgotten by a power cut is only run again. An fsync per claim and per verdict was a third
    /// of the time a small photo spends in the pipeline.
    ///
    /// Every write sets its own level before its transaction (the pragma does no I/O), so a level is never
    /// left behind for the next write: every write in the catalog goes through here.
    func write<T: Sendable>(durable: Bool = true, _ body: @Sendable (Database) throws -> T) throws -> T {
        try pool.writeWithoutTransaction { db in
            try db.execute(sql: durable ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL")
            var value: T?
            try db.inTransaction {
                value = try body(db)
                return .commit
            }
            return value!
        }
    }

    /// The `PRAGMA synchronous` a write runs under (2 = FULL, 1 = NORMAL), read inside such a write.
    package func synchronousLevel(durable: Bool) throws -> Int {
        try write(durable: durable) { db in try Int.fetchOne(db, sql: "PRAGMA synchronous") ?? -1 }
    }

    /// Runs `body` against a consistent snapshot.
    func read<T: Sendable>(_ body: @Sendable (Database) throws -> T) throws -> T {
        try pool.read(body)
    }
}
