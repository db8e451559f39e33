import Foundation
import HubCore

/// A batch and how its images fared.
public struct BatchSummary: Codable, Sendable, Equatable {
    public var batch: BatchRecord
    public var submitted: Int
    public var pending: Int
    public var accepted: Int
    public var quarantined: Int
    public var rejected: Int
    /// Share of decided images that were accepted (nil until one is decided).
    public var qualityScore: Double?
}

extension Catalog {
    /// Opens a submission session for `userId`.
    public func createBatch(userId: Int64, device: String?, lat: Double?, lon: Double?) throws -> BatchRecord {
        try write { db in
            let batch = BatchRecord(id: UUID().uuidString.lowercased(), userId: userId, device: device, lat: lat, lon: lon, createdAt: Date())
            try db.insert(batch)
            return batch
        }
    }

    /// The batch `id`, or nil.
    public func batch(id: String) throws -> BatchRecord? {
        try read { db in try db.find(BatchRecord.self, id) }
    }

    /// The batch `id` with counts computed from its images, or nil.
    public func batchSummary(id: String) throws -> BatchSummary? {
        try read { db in
            guard let batch = try db.find(BatchRecord.self, id) else { return nil }
            var counts: [String: Int] = [:]
            for r in try db.rows("SELECT status, COUNT(*) AS n FROM images WHERE batchId = ? GROUP BY status", [id]) {
                counts[r.string("status") ?? ""] = Int(r.int("n") ?? 0)
            }
            let accepted = counts["accepted"] ?? 0, quarantined = counts["quarantined"] ?? 0, rejected = counts["rejected"] ?? 0
            let decided = accepted + quarantined + rejected
            return BatchSummary(batch: batch, submitted: counts.values.reduce(0, +), pending: counts["pending"] ?? 0,
                                accepted: accepted, quarantined: quarantined, rejected: rejected,
                                qualityScore: decided == 0 ? nil : Double(accepted) / Double(decided))
        }
    }
}
