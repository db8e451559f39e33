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

    /// Runs `body` in a write transaction.
    func write<T: Sendable>(_ body: @Sendable (Database) throws -> T) throws -> T {
        try pool.write(body)
    }

    /// Runs `body` against a consistent snapshot.
    func read<T: Sendable>(_ body: @Sendable (Database) throws -> T) throws -> T {
        try pool.read(body)
    }
}
