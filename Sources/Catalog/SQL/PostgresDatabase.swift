import Foundation
import HubCore
import Logging
import NIOCore
import PostgresNIO
import Synchronization

/// The shared engine: PostgreSQL through PostgresNIO's connection pool, for many hub nodes at once.
///
/// The catalog's methods are synchronous and run on blocking threads (`offload`): each statement is sent
/// through the connection's future-based API and waited for on the calling thread. The pool's own tasks
/// (its runner, leases, listeners) run on an executor of their own, never on Swift's cooperative pool: a
/// caller that blocks a cooperative thread cannot starve the task it waits for.
final class PostgresDatabase: CatalogDatabase {
    let client: PostgresClient
    private let runner: Task<Void, Never>
    private let logger: Logger
    private let notifications = Notifications()
    private let listeners = Mutex<[String: Task<Void, Never>]>([:])
    /// Pooled connections whose session runs `synchronous_commit = off` (see `write(durable:)`).
    private let relaxedConnections = Mutex<Set<PostgresConnection.ID>>([])
    /// Each pooled connection's named prepared statements (see `Connection.query`).
    private let statementsByConnection = Mutex<[PostgresConnection.ID: PreparedStatements]>([:])
    /// Statements (argument types and text) that run unnamed on every connection: their prepared plan went
    /// stale or a session lost them (see `Connection.query`).
    private let staleStatements = StaleStatements()
    /// Seconds a caller waits for a pooled connection before it is told the catalog is unavailable.
    let leaseTimeout: Double
    /// Whether PostgreSQL is out of reach, whether a caller is waiting to see if it is back (see `admit`), and
    /// when a lease was last granted.
    private let outage = Mutex<(down: Bool, probing: Bool, granted: ContinuousClock.Instant?)>((false, false, nil))
    /// The callers waiting for a connection now, by their lease.
    private let waiting = Mutex<[ObjectIdentifier: Lease]>([:])
    var dialect: SQLDialect { .postgres }

    /// Connects to `url` (`postgres://user:password@host:port/database`) and migrates the schema; the
    /// first node to start migrates while the others wait on an advisory lock.
    init(url: String, migrate: Bool = true, leaseTimeout: Double = PostgresDatabase.defaultLeaseTimeout,
         logger: Logger = Logger(label: "imagehub.catalog")) throws {
        let configuration = try PostgresDatabase.configuration(url: url)
        self.leaseTimeout = leaseTimeout
        client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        self.logger = logger
        let client = self.client
        // The pool serves leases once `run()` has begun: wait for the task to reach it.
        let started = DispatchSemaphore(value: 0)
        runner = Task(executorPreference: PostgresDatabase.executor) {
            started.signal()
            await client.run()
        }
        started.wait()
        do {
            if migrate { try PostgresMigrations.migrate(self) }
        } catch {
            close()
            throw error
        }
    }

    static func configuration(url: String) throws -> PostgresClient.Configuration {
        guard let components = URLComponents(string: url), ["postgres", "postgresql"].contains(components.scheme ?? ""),
              let user = components.user, !user.isEmpty else {
            throw HubError(400, "catalog.url_invalid", "catalog.url must look like postgres://user:password@host:5432/database")
        }
        let database = components.path.hasPrefix("/") ? String(components.path.dropFirst()) : components.path
        let sslmode = components.queryItems?.first { $0.name == "sslmode" }?.value ?? "disable"
        let tls: PostgresClient.Configuration.TLS = switch sslmode {
        case "require": .require(.makeClientConfiguration())
        case "prefer": .prefer(.makeClientConfiguration())
        default: .disable
        }
        var configuration = PostgresClient.Configuration(host: components.host ?? "127.0.0.1", port: components.port ?? 5432,
                                                         username: user, password: components.password,
                                                         database: database.isEmpty ? user : database, tls: tls)
        // A catalog that does not answer must turn into a quick 503, not a request that hangs.
        configuration.options.connectTimeout = .seconds(3)
        configuration.options.maximumConnections = 32
        // Nothing waits forever: a lock not granted within a minute fails the statement (55P03, a 503 for the
        // caller), and a node that stops in the middle of a transaction (a frozen process, a lost network)
        // loses its session after two minutes, which frees its locks for the other nodes.
        configuration.options.additionalStartupParameters = [("lock_timeout", "60s"), ("idle_in_transaction_session_timeout", "120s")]
        return configuration
    }

    /// Reads run statement by statement (each sees what was committed when it started), without a
    /// transaction around them: most reads are one statement, and BEGIN and COMMIT would triple their round
    /// trips. No read of the catalog needs two statements to agree (a label tree and its counts a moment apart
    /// are both true).
    func read<T: Sendable>(_ body: (Tx) throws -> T) throws -> T {
        try again { try withConnection(commit: .any) { connection in try body(Tx(connection: connection)) } }
    }

    /// Runs `body`, again (five runs in all) while it fails on a prepared statement gone stale, which runs
    /// unnamed from then on, on every connection (see `Connection.query`), or, with `onConflict`, on a conflict
    /// another node raced (`isConflict`).
    private func again<T>(onConflict: Bool = false, _ body: () throws -> T) throws -> T {
        var attempt = 0
        while true {
            attempt += 1
            do {
                return try body()
            } catch let error as PSQLError where onConflict && attempt < 5 && PostgresDatabase.isConflict(error) {
                logger.debug("retrying a write after a conflict: \(String(reflecting: error))")
            } catch let stale as StalePreparedStatement where attempt < 5 {
                logger.debug("running a statement unnamed again: \(String(reflecting: stale.error))")
            } catch let stale as StalePreparedStatement {
                throw stale.error
            }
        }
    }

    /// Read committed, with row locks where a method reads what it then changes (`Tx.lockRows`) and
    /// advisory locks for the checks that span rows (`Tx.serializeCommits`). A serialisation failure,
    /// a deadlock or a unique violation raced by another node runs the transaction again: the second run
    /// sees the other node's row and answers as SQLite would have.
    ///
    /// A write that need not be durable runs on a session set to `synchronous_commit = off` (a setting a
    /// pooled connection keeps, so a worker's claims and verdicts pay for it once, not with a statement each).
    func write<T: Sendable>(durable: Bool, _ body: (Tx) throws -> T) throws -> T {
        try again(onConflict: true) {
            try withConnection(commit: durable ? .durable : .relaxed) { connection in
                try connection.execute("BEGIN", [])
                do {
                    let value = try body(Tx(connection: connection))
                    try connection.execute("COMMIT", [])
                    return value
                } catch {
                    try? connection.execute("ROLLBACK", [])
                    throw error
                }
            }
        }
    }

    /// Runs `body` without an explicit transaction: each statement is its own, durable when it returns.
    /// For a write that is one statement (the catalog says which).
    func autocommit<T>(_ body: (Tx) throws -> T) throws -> T {
        try again { try withConnection { connection in try body(Tx(connection: connection)) } }
    }

    static func isConflict(_ error: PSQLError) -> Bool {
        guard let state = error.serverInfo?[.sqlState] else { return false }
        return ["40001", "40P01", "23505"].contains(state)
    }

    func ping() throws {
        try withConnection(commit: .any) { try $0.execute("SELECT 1", []) }
    }

    func close() {
        for listener in listeners.withLock({ $0.values }) { listener.cancel() }
        runner.cancel()
    }

    /// Returns when a transaction that notified `channel` commits (on any node), or after `timeout`: a
    /// notification can be missed (a listener reconnecting), so callers still look now and then.
    func waitForNotification(_ channel: String, timeout: Duration) async {
        listeners.withLock { listeners in
            guard listeners[channel] == nil else { return }
            let client = self.client, notifications = self.notifications, logger = self.logger
            listeners[channel] = Task(executorPreference: PostgresDatabase.executor) {
                while !Task.isCancelled {
                    do {
                        try await client.withConnection { connection in
                            try await connection.listen(on: channel) { sequence in
                                for try await _ in sequence { notifications.signal(channel) }
                            }
                        }
                    } catch {
                        logger.debug("listening on \(channel) failed, retrying: \(error)")
                        try? await Task.sleep(for: .seconds(1))
                    }
                }
            }
        }
        await notifications.wait(channel, timeout: timeout)
    }

    /// Whether the commits a leased connection makes must wait for the disk.
    enum CommitMode {
        /// Every commit is flushed (`synchronous_commit = on`, PostgreSQL's default).
        case durable
        /// Commits are not waited onto the disk (`synchronous_commit = off`).
        case relaxed
        /// Reads: whatever the session is set to.
        case any
    }

    /// A claim that began at `start` has looked at the queue `channel` announces.
    func looked(_ channel: String, at start: ContinuousClock.Instant) {
        notifications.looked(channel, at: start)
    }

    /// Leases a pooled connection for `body`, which runs on the calling thread, its session set to `commit`.
    ///
    /// A pooled connection can be dead before it is used (PostgreSQL restarted since it was last used): when
    /// the lease's very first statement finds the connection lost, nothing reached the server, and `body`
    /// runs again on another connection (every caller's first statement is safe to repeat: BEGIN, SET, a
    /// read, or an insert that does nothing the second time). A connection lost later is a 503.
    func withConnection<T>(commit: CommitMode = .durable, _ body: (Connection) throws -> T) throws -> T {
        var attempt = 0
        while true {
            attempt += 1
            let answered = Connection.Answered()
            do {
                return try leaseOnce(commit: commit, answered: answered, body)
            } catch let error as HubError where error.code == "catalog.unavailable" && answered.count == 0 && answered.sent && attempt < 3 {
                logger.debug("a pooled connection was lost before its first statement; trying another: \(error.message)")
                continue
            }
        }
    }

    /// Whether this caller may wait for a connection, and whether it does so as the outage's probe.
    ///
    /// While PostgreSQL is out of reach (the last lease failed), one caller at a time waits for a connection
    /// and the others are answered at once. Otherwise every request of an outage holds a blocking thread for
    /// the whole `leaseTimeout`, the threads run out, and whatever comes next (a health check, a phone's
    /// retry) queues behind them for far longer than the timeout. The lease that fails first declares the
    /// outage and wakes every caller still waiting with the same answer (see `leaseOnce`); the first lease
    /// granted ends it. A wait that merely ran out while other callers were granted connections found a busy
    /// pool, not an outage: it is answered 503 alone.
    private func admit() throws -> Bool {
        try outage.withLock { state in
            guard state.down else { return false }
            guard !state.probing else {
                throw HubError(503, "catalog.unavailable",
                               "the catalog (PostgreSQL) is out of reach; another request is waiting to see whether it is back",
                               details: ["retry_after": "2"])
            }
            state.probing = true
            return true
        }
    }

    /// Whether a lease that failed declares an outage: a pool's error does; a wait that ran out does unless
    /// a lease was granted within the last `leaseTimeout` seconds (then the pool is busy, not cut off).
    static func isOutage(timedOut: Bool, lastGranted: ContinuousClock.Instant?, now: ContinuousClock.Instant, leaseTimeout: Double) -> Bool {
        guard timedOut, let lastGranted else { return true }
        return now - lastGranted >= .seconds(leaseTimeout)
    }

    /// Whether a caller is waiting to see whether PostgreSQL is back, and how many wait for a connection
    /// (tests look).
    var probing: Bool { outage.withLock { $0.probing } }
    var waitingForConnections: Int { waiting.withLock { $0.count } }

    private func leaseOnce<T>(commit: CommitMode, answered: Connection.Answered, _ body: (Connection) throws -> T) throws -> T {
        // Registered before it is admitted, so that a caller admitted before an outage is declared is among
        // those the declaration wakes.
        let lease = Lease(), id = ObjectIdentifier(lease)
        waiting.withLock { $0[id] = lease }
        let probe: Bool
        do {
            probe = try admit()
        } catch {
            waiting.withLock { _ = $0.removeValue(forKey: id) }
            throw error
        }
        let client = self.client
        let done = Task(executorPreference: PostgresDatabase.executor) {
            do {
                try await client.withConnection { connection in
                    await withCheckedContinuation { release in lease.leased(.success(connection), release: release) }
                }
            } catch {
                lease.leased(.failure(error), release: nil)
            }
        }
        let connection: PostgresConnection
        var timedOut = false
        do {
            defer { waiting.withLock { _ = $0.removeValue(forKey: id) } }
            // The pool keeps a lease request waiting while it cannot connect: give up after a while, so that
            // a request gets its 503 instead of hanging (a lease that arrives later is given straight back).
            guard let leased = lease.wait(timeout: leaseTimeout) else {
                timedOut = true
                throw HubError(503, "catalog.unavailable", "the catalog (PostgreSQL) did not answer within \(leaseTimeout) s",
                               details: ["retry_after": "2"])
            }
            connection = try leased.get()
            outage.withLock { state in
                state.down = false
                state.granted = .now
                if probe { state.probing = false }
            }
        } catch {
            done.cancel()
            // A caller woken because another caller's wait declared the outage declares nothing itself.
            let givenUp = error as? Lease.GivenUp, limit = leaseTimeout
            let declared = outage.withLock { state -> Bool in
                if probe { state.probing = false }
                guard givenUp == nil,
                      PostgresDatabase.isOutage(timedOut: timedOut, lastGranted: state.granted, now: .now, leaseTimeout: limit) else { return false }
                state.down = true
                return true
            }
            if let givenUp { throw givenUp.error }
            let unavailable = PostgresDatabase.unavailable(error)
            guard declared else { throw unavailable }
            let outOfReach = HubError(503, "catalog.unavailable",
                                      "the catalog (PostgreSQL) is out of reach (another request's wait ended: \(unavailable.message))",
                                      details: ["retry_after": "2"])
            for other in waiting.withLock({ Array($0.values) }) { other.giveUp(Lease.GivenUp(error: outOfReach)) }
            throw unavailable
        }
        defer {
            lease.release()
            _ = done
        }
        do {
            let prepared = statementsByConnection.withLock { statements in
                if let known = statements[connection.id] { return known }
                // The pool closes idle connections and opens others under new ids: rather than track which are
                // gone, start afresh now and then (PostgresNIO keeps what each live connection prepared, and
                // the names are the same for all).
                if statements.count >= PreparedStatements.connectionsRemembered { statements.removeAll() }
                let new = PreparedStatements()
                statements[connection.id] = new
                return new
            }
            let leased = Connection(connection: connection, logger: logger, answered: answered, statements: prepared,
                                    stale: staleStatements)
            try setCommitMode(commit, of: leased)
            return try body(leased)
        } catch let error as PSQLError where PostgresDatabase.isConnectionLost(error) {
            forgetStatements(of: connection.id)
            throw PostgresDatabase.unavailable(error)
        }
    }

    /// Sets the session of `connection` to `mode` unless it is so already (outside any transaction, so a
    /// rollback cannot undo it behind our back).
    private func setCommitMode(_ mode: CommitMode, of connection: Connection) throws {
        guard mode != .any else { return }
        let id = connection.connection.id
        let relaxed = relaxedConnections.withLock { $0.contains(id) }
        guard relaxed != (mode == .relaxed) else { return }
        try connection.execute(mode == .relaxed ? "SET synchronous_commit = off" : "SET synchronous_commit = on", [])
        relaxedConnections.withLock { if mode == .relaxed { $0.insert(id) } else { $0.remove(id) } }
    }

    /// Seconds a caller waits for a pooled connection, unless told otherwise.
    static let defaultLeaseTimeout = 5.0

    /// The connection broke, or the server is stopping or starting (SQLSTATE class 57, operator
    /// intervention, such as 57P01 during a shutdown; class 08, connection exceptions): the catalog is
    /// unavailable for now, which is a 503, not a fault. So is a lock not granted within `lock_timeout`
    /// (55P03): another node holds it far longer than any of the hub's transactions should.
    static func isConnectionLost(_ error: PSQLError) -> Bool {
        if [.connectionError, .serverClosedConnection, .clientClosedConnection, .poolClosed, .uncleanShutdown].contains(error.code) {
            return true
        }
        guard let state = error.serverInfo?[.sqlState] else { return false }
        return state.hasPrefix("57") || state.hasPrefix("08") || state == "55P03"
    }

    /// What an API node answers while PostgreSQL is down or restarting.
    static func unavailable(_ error: any Error) -> HubError {
        if let hub = error as? HubError { return hub }
        return HubError(503, "catalog.unavailable", "the catalog (PostgreSQL) does not answer: \(String(describing: error))",
                        details: ["retry_after": "2"])
    }

    /// A connection held by a thread that waits for it, and the continuation that gives it back.
    private final class Lease: @unchecked Sendable {
        private let ready = DispatchSemaphore(value: 0)
        /// The lease, the continuation that gives it back, and whether the waiter gave up.
        private let lock = Mutex<(Result<PostgresConnection, any Error>?, CheckedContinuation<Void, Never>?, Bool)>((nil, nil, false))

        func leased(_ result: Result<PostgresConnection, any Error>, release: CheckedContinuation<Void, Never>?) {
            let abandoned = lock.withLock { state -> Bool in
                if state.2 { return true }
                state.0 = result
                state.1 = release
                return false
            }
            if abandoned { release?.resume() } else { ready.signal() }
        }

        /// What a waiter woken by `giveUp` is answered.
        struct GivenUp: Error {
            let error: HubError
        }

        /// Wakes the waiter with `error` unless its lease came already; a lease that comes later is given
        /// straight back.
        func giveUp(_ error: GivenUp) {
            let woken = lock.withLock { state -> Bool in
                guard state.0 == nil, !state.2 else { return false }
                state.0 = .failure(error)
                state.2 = true
                return true
            }
            if woken { ready.signal() }
        }

        /// The leased connection (or why there is none), or nil after `timeout` seconds; a lease that comes
        /// after that is released as soon as it arrives. One that came as the wait ran out is taken.
        func wait(timeout: Double) -> Result<PostgresConnection, any Error>? {
            if ready.wait(timeout: .now() + timeout) == .success { return lock.withLock { $0.0! } }
            return lock.withLock { state in
                if let arrived = state.0 { return arrived }
                state.2 = true
                return nil
            }
        }

        func release() {
            lock.withLock { state in
                state.1?.resume()
                state.1 = nil
            }
        }
    }

    /// Which statements one pooled connection runs by name. Used by the one thread that leases the
    /// connection at a time.
    final class PreparedStatements: @unchecked Sendable {
        /// Statements run once on this connection: a statement is prepared the second time it comes.
        var seen: Set<String> = []
        /// The statements (argument types and text) prepared on this connection; their names are
        /// `NamedStatement.name(for:)`'s, the same on every connection.
        var prepared: Set<String> = []
        /// Statements that failed the first time they ran by name here: PostgresNIO keeps a failed
        /// preparation for the life of the connection, so they run unnamed on it from then on.
        var failed: Set<String> = []
        /// A connection prepares at most this many (statements built for one call, such as an `IN` list of
        /// that call's length, mostly run once and are never prepared).
        static let limit = 128
        /// Statements remembered as run once, at most (then forgotten, all together).
        static let seenLimit = 4096
        /// Connections whose statements are remembered, at most (the pool's connections, and those it closed
        /// and replaced; then all are forgotten together).
        static let connectionsRemembered = 128
    }

    struct Connection: SQLConnection {
        let connection: PostgresConnection
        let logger: Logger
        /// How many statements the server answered on this lease (see `withConnection`).
        let answered: Answered
        let statements: PreparedStatements
        let stale: StaleStatements
        var dialect: SQLDialect { .postgres }

        /// Statements sent and answered on one lease; used by the thread that holds it only.
        final class Answered: @unchecked Sendable {
            var sent = false
            var count = 0
        }

        /// Sent through the connection's future-based API and waited for on this (blocking) thread: the
        /// event loop that reads the answer wakes this thread directly, one hand-over a statement.
        ///
        /// A statement with arguments that comes a second time on a connection runs as a named prepared
        /// statement from then on: PostgreSQL parses and plans it once a connection instead of at every call
        /// (planning alone was about a tenth of the server's time an image). The statement's name stands for
        /// its text and its arguments' types (a NULL is untyped), so that it is prepared with the types the
        /// unnamed statement would have bound.
        func query(_ sql: String, _ arguments: [SQLValue]) throws -> [SQLRow] {
            answered.sent = true
            let query = try PostgresDatabase.query(sql, arguments)
            let rows: [PostgresRow]
            if let (key, name, first) = preparedName(query.sql, arguments) {
                do {
                    rows = try runPrepared(name, query)
                } catch let error as PSQLError where ["0A000", "26000"].contains(error.serverInfo?[.sqlState] ?? "") {
                    // A plan gone stale (another node's migration changed a table: "cached plan must not change
                    // result type"), or a statement the session lost (a pooler between us and the server): every
                    // connection runs it unnamed from now on, and the caller runs its work again.
                    stale.insert(key)
                    throw StalePreparedStatement(error: error)
                } catch {
                    if first { statements.failed.insert(key) }
                    throw error
                }
            } else {
                rows = try connection.query(query, logger: logger).wait().rows
            }
            answered.count += 1
            return try rows.map { row in try SQLRow(row.map { cell in (cell.columnName, try SQLValue(cell)) }) }
        }

        func execute(_ sql: String, _ arguments: [SQLValue]) throws {
            _ = try query(sql, arguments)
        }

        /// The name `text` runs under on this connection with these arguments (its key, its name, and whether
        /// this is its first run by name here); nil while it runs unnamed.
        private func preparedName(_ text: String, _ arguments: [SQLValue]) -> (key: String, name: String, first: Bool)? {
            guard !arguments.isEmpty else { return nil }
            let key = String(arguments.map(\.typeTag)) + ":" + text
            guard !statements.failed.contains(key), !stale.contains(key) else { return nil }
            if statements.prepared.contains(key) { return (key, NamedStatement.name(for: key), false) }
            guard statements.prepared.count < PreparedStatements.limit else { return nil }
            if statements.seen.count >= PreparedStatements.seenLimit { statements.seen.removeAll() }
            guard !statements.seen.insert(key).inserted else { return nil }
            statements.prepared.insert(key)
            return (key, NamedStatement.name(for: key), true)
        }

        /// Runs `query` as the prepared statement `name` (PostgresNIO prepares it on the connection's first
        /// use), on the driver's executor, waited for on this thread.
        private func runPrepared(_ name: String, _ query: PostgresQuery) throws -> [PostgresRow] {
            let result = Mutex<Result<[PostgresRow], any Error>?>(nil)
            let done = DispatchSemaphore(value: 0)
            let connection = self.connection, logger = self.logger
            Task(executorPreference: PostgresDatabase.executor) {
                let outcome: Result<[PostgresRow], any Error>
                do {
                    let rows = try await NamedStatement.$current.withValue(NamedStatement.Text(name: name, sql: query.sql)) {
                        var rows: [PostgresRow] = []
                        for try await row in try await connection.execute(NamedStatement(bindings: query.binds), logger: logger) {
                            rows.append(row)
                        }
                        return rows
                    }
                    outcome = .success(rows)
                } catch {
                    outcome = .failure(error)
                }
                result.withLock { $0 = outcome }
                done.signal()
            }
            done.wait()
            return try result.withLock { $0! }.get()
        }
    }

    /// Forgets what `connection` prepared (it is gone).
    func forgetStatements(of connection: PostgresConnection.ID) {
        statementsByConnection.withLock { _ = $0.removeValue(forKey: connection) }
    }

    /// `?` placeholders become `$1`, `$2`, … (outside quoted text).
    static func numbered(_ sql: String) -> String {
        var text = ""
        var index = 0
        var quote: Character?
        for c in sql {
            if let q = quote {
                if c == q { quote = nil }
                text.append(c)
            } else if c == "'" || c == "\"" {
                quote = c
                text.append(c)
            } else if c == "?" {
                index += 1
                text += "$\(index)"
            } else {
                text.append(c)
            }
        }
        return text
    }

    /// An unnamed statement: `sql` with its arguments bound.
    static func query(_ sql: String, _ arguments: [SQLValue]) throws -> PostgresQuery {
        let text = numbered(sql)
        var binds = PostgresBindings(capacity: arguments.count)
        for value in arguments {
            switch value {
            case .null: binds.appendNull()
            case .integer(let v): binds.append(v)
            case .real(let v): binds.append(v)
            case .text(let v): binds.append(v)
            case .blob(let v): binds.append(ByteBuffer(bytes: v))
            case .date(let v): binds.append(v)
            }
        }
        return PostgresQuery(unsafeSQL: text, binds: binds)
    }

    static let executor = CatalogExecutor()
}

/// A prepared statement that can no longer run by name (see `Connection.query`); the work it was part of runs
/// again.
struct StalePreparedStatement: Error {
    let error: PSQLError
}

/// The statements every connection runs unnamed.
final class StaleStatements: Sendable {
    private let keys = Mutex<Set<String>>([])

    func insert(_ key: String) { _ = keys.withLock { $0.insert(key) } }
    func contains(_ key: String) -> Bool { keys.withLock { $0.contains(key) } }
}

/// A statement run by name on a pooled connection: PostgresNIO prepares it on the connection's first use
/// of the name and binds it from then on. Its text is the running task's `current` (the driver reads a
/// prepared statement's name and text from its type, and the catalog's statements are made at run time).
struct NamedStatement: PostgresPreparedStatement {
    typealias Row = PostgresRow

    struct Text: Sendable {
        var name: String
        var sql: String
    }

    @TaskLocal static var current = Text(name: "", sql: "")
    static var name: String { current.name }
    static var sql: String { current.sql }

    let bindings: PostgresBindings
    func makeBindings() -> PostgresBindings { bindings }
    func decodeRow(_ row: PostgresRow) -> PostgresRow { row }

    /// Names given so far, by argument types and statement text; the same in every connection.
    private static let names = Mutex<[String: String]>([:])

    /// The name of a statement (argument types and text) that is prepared (PostgreSQL's names are at most
    /// 63 bytes).
    static func name(for key: String) -> String {
        names.withLock { names in
            if let name = names[key] { return name }
            let name = "imagehub_\(names.count + 1)"
            names[key] = name
            return name
        }
    }
}

/// Where the PostgreSQL driver's tasks run: a concurrent dispatch queue, away from the cooperative pool.
final class CatalogExecutor: TaskExecutor {
    private let queue = DispatchQueue(label: "imagehub.catalog.postgres", attributes: .concurrent)

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        queue.async { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}

extension SQLValue {
    /// The value's type, for the name of a prepared statement it is an argument of.
    var typeTag: Character {
        switch self {
        case .null: "n"
        case .integer: "i"
        case .real: "r"
        case .text: "t"
        case .blob: "b"
        case .date: "d"
        }
    }

    init(_ cell: PostgresCell) throws {
        guard cell.bytes != nil else { self = .null; return }
        switch cell.dataType {
        case .int2, .int4, .int8, .oid: self = .integer(try cell.decode(Int64.self))
        case .float4, .float8: self = .real(try cell.decode(Double.self))
        case .numeric: self = .real(Double(try cell.decode(String.self)) ?? .nan)
        case .bool: self = .integer(try cell.decode(Bool.self) ? 1 : 0)
        case .bytea: self = .blob(Data(buffer: try cell.decode(ByteBuffer.self)))
        case .timestamptz, .timestamp: self = .date(try cell.decode(Date.self))
        case .void: self = .null
        default: self = .text(try cell.decode(String.self))
        }
    }
}

extension Catalog {
    /// PostgreSQL only (nil on SQLite): runs each statement its number of times on one pooled connection,
    /// then reads the statements that session has prepared (`pg_prepared_statements`), for the tests.
    package func statementsPrepared(running runs: [(sql: String, arguments: [SQLValue], times: Int)]) throws -> [String]? {
        guard let postgres = database as? PostgresDatabase else { return nil }
        return try postgres.withConnection(commit: .any) { connection in
            for run in runs {
                for _ in 0..<run.times { _ = try connection.query(run.sql, run.arguments) }
            }
            return try connection.query("SELECT statement FROM pg_prepared_statements", []).compactMap { $0["statement"].string }
        }
    }

    /// Runs `sql` in a transaction of its own, for tests that change the schema behind a running catalog.
    package func executeForTests(_ sql: String) throws {
        try write { db in try db.execute(sql) }
    }
}
