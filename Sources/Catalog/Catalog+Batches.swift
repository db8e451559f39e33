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

    /// The id of the user who owns batch `id`, or nil when there is no such batch. Every upload into a
    /// batch asks, so owners found are kept (a batch never changes hands).
    public func batchOwner(id: String) throws -> Int64? {
        try batchOwners.id(id) { try batch(id: id)?.userId }
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

    /// The latest `limit` batches (of `uploaderId` only, when given), newest first, with their counts.
    public func batchSummaries(uploaderId: Int64? = nil, limit: Int = 100) throws -> [BatchSummary] {
        try read { db in
            let batches = try db.all(BatchRecord.self, "SELECT * FROM batches\(uploaderId == nil ? "" : " WHERE userId = ?") ORDER BY createdAt DESC, id LIMIT ?",
                                     (uploaderId.map { [$0] } ?? []) + [limit])
            guard !batches.isEmpty else { return [] }
            var counts: [String: [String: Int]] = [:]
            for r in try db.rows("SELECT batchId, status, COUNT(*) AS n FROM images WHERE batchId IN (\(db.placeholders(batches.count))) GROUP BY batchId, status",
                                 batches.map(\.id)) {
                counts[r.string("batchId") ?? "", default: [:]][r.string("status") ?? ""] = Int(r.int("n") ?? 0)
            }
            return batches.map { batch in
                let c = counts[batch.id] ?? [:]
                let accepted = c["accepted"] ?? 0, quarantined = c["quarantined"] ?? 0, rejected = c["rejected"] ?? 0
                let decided = accepted + quarantined + rejected
                return BatchSummary(batch: batch, submitted: c.values.reduce(0, +), pending: c["pending"] ?? 0, accepted: accepted,
                                    quarantined: quarantined, rejected: rejected,
                                    qualityScore: decided == 0 ? nil : Double(accepted) / Double(decided))
            }
        }
    }

    /// Images by the device that sent them (`""` for none given): counts by status and mean sharpness.
    public func deviceSummaries(uploaderId: Int64? = nil) throws -> [DeviceSummary] {
        try read { db in
            var found: [String: DeviceSummary] = [:]
            for r in try db.rows("""
                SELECT COALESCE(device, '') AS device, status, COUNT(*) AS n, AVG(sharpness) AS sharpness FROM images
                \(uploaderId == nil ? "" : "WHERE uploaderId = ?") GROUP BY COALESCE(device, ''), status
                """, uploaderId.map { [$0] } ?? []) {
                let device = r.string("device") ?? "", n = Int(r.int("n") ?? 0)
                var summary = found[device] ?? DeviceSummary(device: device)
                summary.submitted += n
                switch r.string("status") {
                case "accepted": summary.accepted += n
                case "quarantined": summary.quarantined += n
                case "rejected": summary.rejected += n
                default: summary.pending += n
                }
                if let sharpness = r.double("sharpness") {
                    summary.sharpnessSum += sharpness * Double(n)
                    summary.measured += n
                }
                found[device] = summary
            }
            return found.values.sorted { ($0.submitted, $1.device) > ($1.submitted, $0.device) }
        }
    }

    /// Where images were taken (those that carry a place), with their status: at most `limit`, newest first.
    public func places(uploaderId: Int64? = nil, limit: Int = 5000) throws -> [(lat: Double, lon: Double, status: ImageStatus)] {
        try read { db in
            try db.rows("""
                SELECT lat, lon, status FROM images WHERE lat IS NOT NULL AND lon IS NOT NULL\(uploaderId == nil ? "" : " AND uploaderId = ?")
                ORDER BY createdAt DESC LIMIT ?
                """, (uploaderId.map { [$0] } ?? []) + [limit]).compactMap { r in
                guard let lat = r.double("lat"), let lon = r.double("lon") else { return nil }
                return (lat, lon, ImageStatus(rawValue: r.string("status") ?? "") ?? .pending)
            }
        }
    }
}

/// One device's images: counts by status and mean sharpness.
public struct DeviceSummary: Sendable, Equatable {
    public var device: String
    public var submitted = 0, pending = 0, accepted = 0, quarantined = 0, rejected = 0
    var sharpnessSum = 0.0, measured = 0
    public var meanSharpness: Double? { measured == 0 ? nil : sharpnessSum / Double(measured) }
    /// Share of decided images that were accepted (nil until one is decided).
    public var acceptance: Double? {
        let decided = accepted + quarantined + rejected
        return decided == 0 ? nil : Double(accepted) / Double(decided)
    }
    init(device: String) { self.device = device }
}
