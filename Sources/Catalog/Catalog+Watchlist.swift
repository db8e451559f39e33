import Foundation
import GRDB
import HubCore

/// A request to be told when a label has enough accepted images.
public struct WatchRecord: Codable, Sendable, FetchableRecord, MutablePersistableRecord {
    public static let databaseTableName = "watches"
    public var id: Int64?
    public var labelId: Int64
    public var threshold: Int
    public var webhookUrl: String?
    public var userId: Int64
    public var firedAt: Date?
    public var createdAt: Date

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}

/// One webhook notification and its delivery attempts.
public struct DeliveryRecord: Codable, Sendable, FetchableRecord, MutablePersistableRecord {
    public static let databaseTableName = "deliveries"
    public enum State: String, Codable, Sendable { case pending, delivered, failed }
    public var id: Int64?
    public var watchId: Int64
    public var payload: String
    public var state: State
    public var attempts: Int
    public var responseStatus: Int?
    public var lastError: String?
    public var nextAttemptAt: Date
    public var createdAt: Date
    public var updatedAt: Date

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}

extension Catalog {
    /// Adds a watch (one per user, label, threshold and URL: asking again returns the existing one).
    @discardableResult
    public func watch(labelId: Int64, threshold: Int, webhookUrl: String?, userId: Int64) throws -> WatchRecord {
        try write { db in
            if let existing = try WatchRecord.fetchOne(db, sql: """
                SELECT * FROM watches WHERE labelId = ? AND threshold = ? AND userId = ? AND webhookUrl IS ? AND firedAt IS NULL
                """, arguments: [labelId, threshold, userId, webhookUrl]) { return existing }
            var watch = WatchRecord(id: nil, labelId: labelId, threshold: threshold, webhookUrl: webhookUrl, userId: userId,
                                    firedAt: nil, createdAt: Date())
            try watch.insert(db)
            return watch
        }
    }

    public func watches() throws -> [WatchRecord] {
        try read { db in try WatchRecord.order(Column("id")).fetchAll(db) }
    }

    public func deliveries(watchId: Int64? = nil) throws -> [DeliveryRecord] {
        try read { db in
            var q = DeliveryRecord.order(Column("id"))
            if let watchId { q = q.filter(Column("watchId") == watchId) }
            return try q.fetchAll(db)
        }
    }

    /// Fires every unfired watch whose label (with its descendants) has reached its threshold of accepted
    /// images: marks it fired and queues a delivery when it has a webhook, in one transaction, so each
    /// watch fires once however many nodes check. Returns the watches fired.
    @discardableResult
    public func fireWatches(payload: @escaping @Sendable (WatchRecord, String, Int) -> String) throws -> [WatchRecord] {
        try write { db in
            var fired: [WatchRecord] = []
            for var watch in try WatchRecord.filter(Column("firedAt") == nil).fetchAll(db) {
                let ids = try [watch.labelId] + Catalog.descendantIds(db, watch.labelId)
                let count = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM images WHERE status = 'accepted' AND labelId IN (\(ids.map(String.init).joined(separator: ",")))") ?? 0
                guard count >= watch.threshold,
                      let name = try String.fetchOne(db, sql: "SELECT name FROM labels WHERE id = ?", arguments: [watch.labelId]) else { continue }
                watch.firedAt = Date()
                try watch.update(db)
                if watch.webhookUrl != nil {
                    var delivery = DeliveryRecord(id: nil, watchId: watch.id!, payload: payload(watch, name, count), state: .pending,
                                                  attempts: 0, responseStatus: nil, lastError: nil, nextAttemptAt: Date(),
                                                  createdAt: Date(), updatedAt: Date())
                    try delivery.insert(db)
                }
                fired.append(watch)
            }
            return fired
        }
    }

    /// Pending deliveries that are due, with their target URL.
    public func dueDeliveries(now: Date = Date()) throws -> [(DeliveryRecord, String)] {
        try read { db in
            try DeliveryRecord.filter(Column("state") == "pending" && Column("nextAttemptAt") <= now).order(Column("id")).fetchAll(db)
                .compactMap { d in try WatchRecord.fetchOne(db, key: d.watchId)?.webhookUrl.map { (d, $0) } }
        }
    }

    /// Records an attempt: delivered, retried after `retryAfter`, or failed after `maxAttempts`.
    public func recordDelivery(id: Int64, status: Int?, error: String?, retryAfter: TimeInterval, maxAttempts: Int) throws {
        try write { db in
            guard var d = try DeliveryRecord.fetchOne(db, key: id), d.state == .pending else { return }
            d.attempts += 1
            d.responseStatus = status
            d.lastError = error
            d.updatedAt = Date()
            if let status, (200..<300).contains(status) {
                d.state = .delivered
            } else if d.attempts >= maxAttempts {
                d.state = .failed
            } else {
                d.nextAttemptAt = Date().addingTimeInterval(retryAfter)
            }
            try d.update(db)
        }
    }
}
