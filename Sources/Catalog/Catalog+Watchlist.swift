import Foundation
import HubCore

/// A request to be told when a label has enough accepted images.
public struct WatchRecord: Codable, Sendable, CatalogRecord {
    static let table = "watches"
    public var id: Int64?
    public var labelId: Int64
    public var threshold: Int
    public var webhookUrl: String?
    public var userId: Int64
    public var firedAt: Date?
    public var createdAt: Date
}

/// One webhook notification and its delivery attempts.
public struct DeliveryRecord: Codable, Sendable, CatalogRecord {
    static let table = "deliveries"
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
}

extension Catalog {
    /// Adds a watch (one per user, label, threshold and URL: asking again returns the existing one).
    @discardableResult
    public func watch(labelId: Int64, threshold: Int, webhookUrl: String?, userId: Int64) throws -> WatchRecord {
        try write { db in
            try db.serializeWatches()
            if let existing = try db.one(WatchRecord.self, """
                SELECT * FROM watches WHERE labelId = ? AND threshold = ? AND userId = ? AND webhookUrl IS NOT DISTINCT FROM ? AND firedAt IS NULL
                """, [labelId, threshold, userId, webhookUrl]) { return existing }
            var watch = WatchRecord(id: nil, labelId: labelId, threshold: threshold, webhookUrl: webhookUrl, userId: userId,
                                    firedAt: nil, createdAt: Date())
            watch.id = try db.insert(watch)
            return watch
        }
    }

    public func watches() throws -> [WatchRecord] {
        try read { db in try db.all(WatchRecord.self, "SELECT * FROM watches ORDER BY id") }
    }

    public func deliveries(watchId: Int64? = nil) throws -> [DeliveryRecord] {
        try read { db in
            if let watchId { return try db.all(DeliveryRecord.self, "SELECT * FROM deliveries WHERE watchId = ? ORDER BY id", [watchId]) }
            return try db.all(DeliveryRecord.self, "SELECT * FROM deliveries ORDER BY id")
        }
    }

    /// Fires every unfired watch whose label (with its descendants) has reached its threshold of accepted
    /// images: marks it fired and queues a delivery when it has a webhook, in one transaction, so each
    /// watch fires once however many nodes check. Returns the watches fired.
    @discardableResult
    public func fireWatches(payload: @escaping @Sendable (WatchRecord, String, Int) -> String) throws -> [WatchRecord] {
        try write { db in
            try db.serializeWatches()
            var fired: [WatchRecord] = []
            for var watch in try db.all(WatchRecord.self, "SELECT * FROM watches WHERE firedAt IS NULL ORDER BY id") {
                let ids = try [watch.labelId] + Catalog.descendantIds(db, watch.labelId)
                let count = Int(try db.int("SELECT COUNT(*) FROM images WHERE status = 'accepted' AND labelId IN (\(ids.map(String.init).joined(separator: ",")))") ?? 0)
                guard count >= watch.threshold,
                      let name = try db.scalar("SELECT name FROM labels WHERE id = ?", [watch.labelId]).string else { continue }
                watch.firedAt = Date()
                try db.update(watch)
                if watch.webhookUrl != nil {
                    try db.insert(DeliveryRecord(id: nil, watchId: watch.id!, payload: payload(watch, name, count), state: .pending,
                                                 attempts: 0, responseStatus: nil, lastError: nil, nextAttemptAt: Date(),
                                                 createdAt: Date(), updatedAt: Date()))
                }
                fired.append(watch)
            }
            return fired
        }
    }

    /// Pending deliveries that are due, with their target URL.
    public func dueDeliveries(now: Date = Date()) throws -> [(DeliveryRecord, String)] {
        try read { db in
            try db.all(DeliveryRecord.self, "SELECT * FROM deliveries WHERE state = 'pending' AND nextAttemptAt <= ? ORDER BY id", [now])
                .compactMap { d in try db.find(WatchRecord.self, d.watchId)?.webhookUrl.map { (d, $0) } }
        }
    }

    /// Records an attempt: delivered, retried after `retryAfter`, or failed after `maxAttempts`.
    public func recordDelivery(id: Int64, status: Int?, error: String?, retryAfter: TimeInterval, maxAttempts: Int) throws {
        try write { db in
            guard var d = try db.find(DeliveryRecord.self, id, forUpdate: true), d.state == .pending else { return }
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
            try db.update(d)
        }
    }
}

extension Catalog {
    /// Watches not fired yet, each with its label's accepted count (descendants included).
    public func openWatches() throws -> [(watch: WatchRecord, accepted: Int)] {
        try read { db in
            try db.all(WatchRecord.self, "SELECT * FROM watches WHERE firedAt IS NULL ORDER BY id").map { watch in
                let ids = try [watch.labelId] + Catalog.descendantIds(db, watch.labelId)
                let count = Int(try db.int("SELECT COUNT(*) FROM images WHERE status = 'accepted' AND labelId IN (\(ids.map(String.init).joined(separator: ",")))") ?? 0)
                return (watch, count)
            }
        }
    }

    /// The newest accepted images of a label, newest first.
    public func newestAccepted(labelId: Int64, limit: Int) throws -> [ImageRecord] {
        try read { db in
            try db.all(ImageRecord.self, "SELECT * FROM images WHERE labelId = ? AND status = 'accepted' ORDER BY updatedAt DESC, id LIMIT ?", [labelId, limit])
        }
    }
}
