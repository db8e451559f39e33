import Foundation
import HubCore
import Synchronization

/// The hub's state: labels, users, batches, images, jobs, embeddings, models and the watch-list.
/// Every method is one transaction. Two engines behind one behaviour: SQLite in the data directory
/// (embedded, the default) or PostgreSQL shared by many nodes (`catalog.url`).
public final class Catalog: Sendable {
    let database: any CatalogDatabase
    /// Users found by their key lately.
    let keys = KeyCache()
    /// Label ids found by (lower-cased) name.
    let labelIds = Remembered()
    /// The owners of batches found lately (a batch is never deleted, nor given to another user).
    let batchOwners = Remembered()
    /// What upload admission last counted of the backlog, and the uploads it admitted since.
    let admission = Mutex<BacklogEstimate?>(nil)

    /// Opens (creating and migrating) the SQLite catalog at `path`.
    public init(path: String) throws {
        database = try SQLiteDatabase(path: path)
    }

    /// Connects to (and migrates) the PostgreSQL catalog at `url`, `postgres://user:password@host:port/database`.
    public init(url: String) throws {
        database = try PostgresDatabase(url: url)
    }

    /// Connects to the PostgreSQL server at `url` without migrating, waiting at most `leaseTimeout` seconds
    /// for a connection (tests of a server out of reach).
    package init(unmigratedURL url: String, leaseTimeout: Double) throws {
        database = try PostgresDatabase(url: url, migrate: false, leaseTimeout: leaseTimeout)
    }

    /// Whether a caller is waiting to see whether the PostgreSQL server, out of reach, is back.
    package var probingOutage: Bool { (database as? PostgresDatabase)?.probing ?? false }
    /// Whether a failed lease of a PostgreSQL connection declares an outage (see `PostgresDatabase.isOutage`).
    package static func leaseFailureIsOutage(timedOut: Bool, lastGranted: ContinuousClock.Instant?, now: ContinuousClock.Instant,
                                             leaseTimeout: Double) -> Bool {
        PostgresDatabase.isOutage(timedOut: timedOut, lastGranted: lastGranted, now: now, leaseTimeout: leaseTimeout)
    }

    /// The callers waiting for a pooled PostgreSQL connection now.
    package var waitingForConnections: Int { (database as? PostgresDatabase)?.waitingForConnections ?? 0 }

    /// The catalog a hub in `dataDirectory` uses: PostgreSQL when `url` is set, else `catalog.sqlite` there.
    public static func open(dataDirectory: URL, url: String?) throws -> Catalog {
        if let url, !url.isEmpty { return try Catalog(url: url) }
        return try Catalog(path: dataDirectory.appendingPathComponent("catalog.sqlite").path)
    }

    /// The channel a new pipeline job is announced on (PostgreSQL `LISTEN`/`NOTIFY`).
    public static let jobsChannel = "imagehub_jobs"
    /// The channel a new training job is announced on.
    public static let trainingChannel = "imagehub_training"

    /// Creates the database `name` on the PostgreSQL server at `serverURL` and returns its URL (the tests
    /// give each hub a database of its own).
    package static func createPostgresDatabase(serverURL: String, name: String) throws -> String {
        let server = try PostgresDatabase(url: serverURL, migrate: false)
        defer { server.close() }
        try server.withConnection { try $0.execute("CREATE DATABASE \"\(name)\"", []) }
        guard var components = URLComponents(string: serverURL) else { throw HubError(400, "catalog.url_invalid", serverURL) }
        components.path = "/" + name
        return components.string ?? serverURL
    }

    /// Drops the database `name` on the PostgreSQL server at `serverURL` (benchmarks clean up after themselves).
    package static func dropPostgresDatabase(serverURL: String, name: String) throws {
        let server = try PostgresDatabase(url: serverURL, migrate: false)
        defer { server.close() }
        try server.withConnection { try $0.execute("DROP DATABASE IF EXISTS \"\(name)\" WITH (FORCE)", []) }
    }

    /// The engine: `sqlite` or `postgres`.
    public var engine: SQLDialect { database.dialect }

    /// Throws unless the engine answers now (`/healthz`).
    public func ping() throws { try database.ping() }

    /// Returns when work may have arrived on `channel` (`jobsChannel`, `trainingChannel`): at once when
    /// another node's commit announces it (PostgreSQL `LISTEN`), else after `idle` (PostgreSQL) or
    /// `embedded` (SQLite, whose writers all live in this process and cost nothing to ask).
    public func waitForWork(on channel: String, idle: Duration = .seconds(2), embedded: Duration = .milliseconds(50)) async {
        if let postgres = database as? PostgresDatabase {
            await postgres.waitForNotification(channel, timeout: idle)
        } else {
            try? await Task.sleep(for: embedded)
        }
    }

    /// Closes the engine's connections.
    public func close() { database.close() }

    /// Runs `body` in a write transaction, durable when it commits.
    ///
    /// With `durable: false` the commit is not waited onto the disk (SQLite `synchronous = NORMAL`,
    /// PostgreSQL `synchronous_commit = off`): it survives a crash of the process but not necessarily of
    /// the machine. For work that is safe to redo: a job claimed or finished and then forgotten by a power
    /// cut is only run again. An fsync per claim and per verdict was a third of the time a small photo
    /// spends in the pipeline.
    func write<T: Sendable>(durable: Bool = true, _ body: (Tx) throws -> T) throws -> T {
        try database.write(durable: durable, body)
    }

    /// Whether a write's commit waits for the disk, as the engine says inside such a write (SQLite
    /// `PRAGMA synchronous` FULL, PostgreSQL `synchronous_commit` on).
    package func commitWaitsForDisk(durable: Bool) throws -> Bool {
        try write(durable: durable) { db in
            db.dialect == .postgres ? try db.scalar("SHOW synchronous_commit").string == "on" : try db.int("PRAGMA synchronous") == 2
        }
    }

    /// Runs `body` against a consistent snapshot.
    func read<T: Sendable>(_ body: (Tx) throws -> T) throws -> T {
        try database.read(body)
    }
}

/// Ids found by a key that never changes its answer once it has one (a label's name, a batch's owner),
/// kept so that the catalog is asked once; at 100,000 entries it starts afresh.
final class Remembered: Sendable {
    private let found = Mutex<[String: Int64]>([:])

    /// The id remembered for `key`, else `lookup`'s answer, remembered when there is one.
    func id(_ key: String, _ lookup: () throws -> Int64?) rethrows -> Int64? {
        if let id = found.withLock({ $0[key] }) { return id }
        guard let id = try lookup() else { return nil }
        found.withLock { found in
            if found.count >= 100_000 { found.removeAll(keepingCapacity: true) }
            found[key] = id
        }
        return id
    }
}
