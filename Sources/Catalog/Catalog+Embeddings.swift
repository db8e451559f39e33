import Foundation
import GRDB
import HubCore

/// A stored embedding with what the similarity index needs to know about its image.
public struct EmbeddingRow: Sendable {
    public let seq: Int64
    public let imageId: String
    public let labelId: Int64
    public let status: ImageStatus
    public let model: String
    public let vector: Data
}

/// What the embed stage sees inside the transaction that commits a verdict: embeddings written since
/// `after` (by any process) and the labels related to the image's label (ancestors and descendants).
public struct CommitContext: Sendable {
    public let image: ImageRecord
    public let newRows: [EmbeddingRow]
    public let watermark: Int64
    public let relatedLabels: Set<Int64>
}

/// A label's stored clustering (JSON payloads as the embed stage wrote them).
public struct LabelClustersRecord: Codable, Sendable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "labelClusters"
    public var labelId: Int64
    public var imageCount: Int
    public var k: Int
    public var silhouette: Double
    public var clusters: String
    public var outliers: String
    public var model: String
    public var computedAt: Date

    public init(labelId: Int64, imageCount: Int, k: Int, silhouette: Double, clusters: String, outliers: String, model: String, computedAt: Date) {
        self.labelId = labelId; self.imageCount = imageCount; self.k = k; self.silhouette = silhouette
        self.clusters = clusters; self.outliers = outliers; self.model = model; self.computedAt = computedAt
    }
}

extension Catalog {
    static func embeddingRows(_ db: Database, after seq: Int64) throws -> [EmbeddingRow] {
        try Row.fetchAll(db, sql: """
            SELECT e.seq, e.imageId, i.labelId, i.status, e.model, e.vector FROM embeddings e
            JOIN images i ON i.id = e.imageId WHERE e.seq > ? ORDER BY e.seq
            """, arguments: [seq]).map { row in
            EmbeddingRow(seq: row["seq"], imageId: row["imageId"], labelId: row["labelId"],
                         status: ImageStatus(rawValue: row["status"]) ?? .pending, model: row["model"], vector: row["vector"])
        }
    }

    /// Embeddings written after `seq`, oldest first (an in-memory index catches up with these).
    public func embeddingRows(after seq: Int64) throws -> [EmbeddingRow] {
        try read { db in try Catalog.embeddingRows(db, after: seq) }
    }

    /// Rewrites an image's embedding row so that indexes see its new status.
    static func touchEmbedding(_ db: Database, imageId: String) throws {
        try db.execute(sql: """
            INSERT INTO embeddings (imageId, model, vector, createdAt)
            SELECT imageId, model, vector, createdAt FROM embeddings WHERE imageId = ?
            """, arguments: [imageId])
    }

    static func storeEmbedding(_ db: Database, imageId: String, model: String, vector: Data) throws {
        try db.execute(sql: "INSERT INTO embeddings (imageId, model, vector, createdAt) VALUES (?, ?, ?, ?)",
                       arguments: [imageId, model, vector, Date()])
    }

    /// Ancestors and descendants of a label (an image of "Dalmatian" that looks like "Dog" is no mismatch).
    static func relatedLabels(_ db: Database, _ labelId: Int64) throws -> Set<Int64> {
        Set(try descendantIds(db, labelId)).union(try ancestorIds(db, labelId))
    }

    /// Ancestors and descendants of a label.
    public func relatedLabelIds(_ labelId: Int64) throws -> Set<Int64> {
        try read { db in try Catalog.relatedLabels(db, labelId) }
    }

    /// Accepted images of `labelId` whose label check is still `unverified`, oldest first.
    public func unverifiedImages(labelId: Int64, limit: Int = 1000) throws -> [ImageRecord] {
        try read { db in
            try ImageRecord.filter(Column("labelId") == labelId && Column("status") == ImageStatus.accepted.rawValue
                                   && Column("labelCheck") == "unverified")
                .order(Column("createdAt"), Column("id")).limit(limit).fetchAll(db)
        }
    }

    /// Labels with unverified accepted images, and how many accepted images they have now.
    public func labelsWithUnverifiedImages() throws -> [(labelId: Int64, accepted: Int)] {
        try read { db in
            try Row.fetchAll(db, sql: """
                SELECT u.labelId, (SELECT COUNT(*) FROM images a WHERE a.labelId = u.labelId AND a.status = 'accepted') AS accepted
                FROM (SELECT DISTINCT labelId FROM images WHERE status = 'accepted' AND labelCheck = 'unverified') u
                """).map { ($0["labelId"], $0["accepted"]) }
        }
    }

    /// Stores a background re-check: a mismatch moves the accepted image to quarantine with
    /// `label.mismatch`. Only applies while the image is still accepted and unverified.
    @discardableResult
    public func applyLabelCheck(imageId: String, state: String, score: Double?, suggestedLabelId: Int64?, suggestedScore: Double?) throws -> Bool {
        try write { db in
            guard var image = try ImageRecord.fetchOne(db, key: imageId), image.status == .accepted,
                  image.labelCheck == "unverified" else { return false }
            image.labelCheck = state
            image.labelScore = score
            image.suggestedLabelId = suggestedLabelId
            image.suggestedScore = suggestedScore
            if state == "mismatch" {
                image.status = .quarantined
                image.reasons = ImageRecord.encodeReasons(image.reasonCodes + ["label.mismatch"])
            }
            image.updatedAt = Date()
            try image.update(db)
            if state == "mismatch" { try Catalog.touchEmbedding(db, imageId: imageId) }
            return true
        }
    }

    public func labelClusters(labelId: Int64) throws -> LabelClustersRecord? {
        try read { db in try LabelClustersRecord.fetchOne(db, key: labelId) }
    }

    public func allLabelClusters() throws -> [Int64: LabelClustersRecord] {
        try read { db in try LabelClustersRecord.fetchAll(db).reduce(into: [:]) { $0[$1.labelId] = $1 } }
    }

    public func saveLabelClusters(_ record: LabelClustersRecord) throws {
        try write { db in try record.save(db) }
    }

    /// The embedding stored for an image.
    public func embedding(imageId: String) throws -> (model: String, vector: Data)? {
        try read { db in
            try Row.fetchOne(db, sql: "SELECT model, vector FROM embeddings WHERE imageId = ?", arguments: [imageId])
                .map { ($0["model"], $0["vector"]) }
        }
    }
}
