import Foundation
import HubCore

/// One image's quality figures and reasons, as label learning reads them.
public struct QualitySample: Sendable, Equatable {
    public var reasons: [String]
    public var sharpness: Double
    public var brightness: Double
    public var contrast: Double

    public init(reasons: [String], sharpness: Double, brightness: Double, contrast: Double) {
        self.reasons = reasons
        self.sharpness = sharpness
        self.brightness = brightness
        self.contrast = contrast
    }
}

extension Catalog {
    /// Labels with images written after `since`, each with its newest write, oldest first, at most `limit`.
    public func labelsChanged(since: Date, limit: Int) throws -> [(labelId: Int64, last: Date)] {
        try read { db in
            try db.rows("""
                SELECT labelId, MAX(updatedAt) AS last FROM images WHERE updatedAt > ? GROUP BY labelId ORDER BY last LIMIT ?
                """, [since, limit]).compactMap { row in
                guard let id = row.int("labelId"), let last = row.date("last") else { return nil }
                return (id, last)
            }
        }
    }

    /// What a label's quality thresholds are learnt from: its newest `limit` accepted images, and its
    /// images a reviewer rejected after they were quarantined for quality (not those whose label was doubted
    /// too: the rejection may have been for the label).
    public func qualityEvidence(labelId: Int64, limit: Int = 5000) throws -> (accepted: [QualitySample], rejected: [QualitySample]) {
        try read { db in
            func samples(_ rows: [SQLRow]) -> [QualitySample] {
                rows.compactMap { row in
                    guard let s = row.double("sharpness"), let b = row.double("brightness"), let c = row.double("contrast") else { return nil }
                    let reasons = (try? JSONDecoder().decode([String].self, from: Data((row.string("reasons") ?? "[]").utf8))) ?? []
                    return QualitySample(reasons: reasons, sharpness: s, brightness: b, contrast: c)
                }
            }
            let accepted = try db.rows("""
                SELECT reasons, sharpness, brightness, contrast FROM images
                WHERE labelId = ? AND status = 'accepted' AND sharpness IS NOT NULL ORDER BY updatedAt DESC LIMIT ?
                """, [labelId, limit])
            let rejected = try db.rows("""
                SELECT reasons, sharpness, brightness, contrast FROM images
                WHERE labelId = ? AND status = 'rejected' AND sharpness IS NOT NULL AND reasons LIKE '%"review.rejected"%'
                  AND reasons LIKE '%"quality.%' AND reasons NOT LIKE '%"label.mismatch"%' ORDER BY updatedAt DESC LIMIT ?
                """, [labelId, limit])
            return (samples(accepted), samples(rejected))
        }
    }

    /// Stores a label's learnt quality (JSON, see `LabelQuality`).
    public func storeLabelQuality(labelId: Int64, json: String) throws {
        try write { db in
            try db.execute("""
                INSERT INTO labelQuality (labelId, thresholds, computedAt) VALUES (?, ?, ?)
                ON CONFLICT (labelId) DO UPDATE SET thresholds = excluded.thresholds, computedAt = excluded.computedAt
                """, [labelId, json, Date()])
        }
    }

    /// Every label's learnt quality (JSON), by label id.
    public func labelQualities() throws -> [Int64: String] {
        try read { db in
            var out: [Int64: String] = [:]
            for row in try db.rows("SELECT labelId, thresholds FROM labelQuality", []) {
                if let id = row.int("labelId"), let json = row.string("thresholds") { out[id] = json }
            }
            return out
        }
    }

    /// One label's learnt quality (JSON), if it has learnt any.
    public func labelQuality(labelId: Int64) throws -> String? {
        try read { db in try db.row("SELECT thresholds FROM labelQuality WHERE labelId = ?", [labelId])?.string("thresholds") }
    }
}
