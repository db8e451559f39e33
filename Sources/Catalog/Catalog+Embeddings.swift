import Foundation
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
public struct LabelClustersRecord: Codable, Sendable, CatalogRecord {
    static let table = "labelClusters"
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
    static func embeddingRows(_ db: Tx, after seq: Int64) throws -> [EmbeddingRow] {
        try db.rows(embeddingRowsQuery, [seq]).map(embeddingRow)
    }

    static let embeddingRowsQuery = """
        SELECT e.seq, e.imageId, i.labelId, i.status, e.model, e.vector FROM embeddings e
        JOIN images i ON i.id = e.imageId WHERE e.seq > ? ORDER BY e.seq
        """

    static func embeddingRow(_ row: SQLRow) -> EmbeddingRow {
        EmbeddingRow(seq: row.int("seq") ?? 0, imageId: row.string("imageId") ?? "", labelId: row.int("labelId") ?? 0,
                     status: ImageStatus(rawValue: row.string("status") ?? "") ?? .pending, model: row.string("model") ?? "",
                     vector: row.data("vector") ?? Data())
    }

    /// PostgreSQL, after the commit lock: the accepted near duplicate of `nearHash` (when given) and the
    /// embeddings committed after `rowsAfter` (when given), in one statement. The near duplicate comes as
    /// a row without a sequence number.
    static func commitLookups(_ db: Tx, nearHash: UInt64?, distance: Int, imageId: String,
                              rowsAfter: Int64?) throws -> (near: String?, rows: [EmbeddingRow]?) {
        var parts: [String] = []
        var arguments: [any SQLBindable] = []
        if let nearHash {
            let near = nearDuplicateQuery(db, nearHash, distance, imageId)
            parts.append("SELECT NULL::bigint AS seq, (\(near.sql)) AS imageId, NULL::bigint AS labelId, NULL::text AS status, NULL::text AS model, NULL::bytea AS vector")
            arguments += near.arguments
        }
        if let rowsAfter {
            parts.append("(\(embeddingRowsQuery))")
            arguments.append(rowsAfter)
        }
        guard !parts.isEmpty else { return (nil, nil) }
        let rows = try db.rows(parts.joined(separator: " UNION ALL "), arguments)
        let near = rows.first { $0.int("seq") == nil }?.string("imageId")
        return (near, rowsAfter == nil ? nil : rows.filter { $0.int("seq") != nil }.map(embeddingRow).sorted { $0.seq < $1.seq })
    }

    /// An image whose stored embedding another backbone made, with where its canonical rendition is.
    public struct StaleEmbedding: Sendable {
        public let seq: Int64
        public let imageId: String
        public let model: String
        public let canonicalKey: String?
    }

    /// Up to `limit` images whose embedding is not `model`'s, after sequence number `seq`, oldest first.
    public func staleEmbeddings(model: String, after seq: Int64 = 0, limit: Int) throws -> [StaleEmbedding] {
        try read { db in
            try db.rows("""
                SELECT e.seq, e.imageId, e.model, i.canonicalKey FROM embeddings e JOIN images i ON i.id = e.imageId
                WHERE e.model <> ? AND e.seq > ? ORDER BY e.seq LIMIT ?
                """, [model, seq, limit]).map { row in
                StaleEmbedding(seq: row.int("seq") ?? 0, imageId: row.string("imageId") ?? "", model: row.string("model") ?? "",
                               canonicalKey: row.string("canonicalKey"))
            }
        }
    }

    /// Stores `vector` as the image's embedding by `model`, replacing the one it had (a new sequence number,
    /// so every node's index sees the change). Nothing happens for an image deleted meanwhile.
    public func replaceEmbedding(imageId: String, model: String, vector: Data) throws {
        try write { db in
            guard try db.find(ImageRecord.self, imageId, forUpdate: true) != nil else { return }
            try Catalog.storeEmbedding(db, imageId: imageId, model: model, vector: vector)
            try db.execute("UPDATE images SET embeddingModel = ? WHERE id = ?", [model, imageId])
        }
    }

    /// Embeddings written after `seq`, oldest first (an in-memory index catches up with these).
    public func embeddingRows(after seq: Int64) throws -> [EmbeddingRow] {
        try read { db in try Catalog.embeddingRows(db, after: seq) }
    }

    /// Rewrites an image's embedding row under a new sequence number, so that indexes see its new status.
    static func touchEmbedding(_ db: Tx, imageId: String) throws {
        guard let row = try db.row("SELECT model, vector, createdAt FROM embeddings WHERE imageId = ?", [imageId]) else { return }
        try storeEmbedding(db, imageId: imageId, model: row.string("model") ?? "", vector: row.data("vector") ?? Data(),
                           createdAt: row.date("createdAt") ?? Date())
    }

    /// Stores (or replaces) an image's embedding under the next sequence number. Sequence numbers must
    /// commit in order, or an index catching up past a higher one would never see a lower one that
    /// commits later: every writer of embeddings holds the commit lock (`holdingCommitLock`: the caller took it).
    @discardableResult
    static func storeEmbedding(_ db: Tx, imageId: String, model: String, vector: Data, createdAt: Date = Date(),
                               holdingCommitLock: Bool = false) throws -> Int64 {
        if !holdingCommitLock { try db.serializeCommits() }
        return try db.together(embeddingStatements(db, imageId: imageId, model: model, vector: vector, createdAt: createdAt))
            .first?.int("seq") ?? 0
    }

    /// The statements `storeEmbedding` runs (the commit lock held); the last returns the row's `seq`.
    static func embeddingStatements(_ db: Tx, imageId: String, model: String, vector: Data, createdAt: Date = Date()) -> [Statement] {
        if db.dialect == .postgres {
            // One statement; a replaced vector takes a new sequence number, so the other nodes' indexes see it.
            return [Statement("""
                INSERT INTO embeddings (imageId, model, vector, createdAt) VALUES (?, ?, ?, ?)
                ON CONFLICT (imageId) DO UPDATE SET seq = nextval('embeddings_seq_seq'), model = EXCLUDED.model,
                    vector = EXCLUDED.vector, createdAt = EXCLUDED.createdAt
                RETURNING seq
                """, [imageId, model, vector, createdAt])]
        }
        return [Statement("DELETE FROM embeddings WHERE imageId = ?", [imageId]),
                Statement("INSERT INTO embeddings (imageId, model, vector, createdAt) VALUES (?, ?, ?, ?) RETURNING seq",
                          [imageId, model, vector, createdAt])]
    }

    /// Ancestors and descendants of a label (an image of "Dalmatian" that looks like "Dog" is no mismatch).
    static func relatedLabels(_ db: Tx, _ labelId: Int64) throws -> Set<Int64> {
        Set(try db.rows(relatedLabelsQuery(of: "?"), [labelId, labelId]).compactMap { $0.int("id") })
    }

    /// Ancestors and descendants of the label `id` (SQL: a placeholder bound twice, or a column of an outer query).
    static func relatedLabelsQuery(of id: String) -> String {
        """
        WITH RECURSIVE sub(id) AS (SELECT id FROM labels WHERE parentId = \(id) UNION SELECT l.id FROM labels l JOIN sub ON l.parentId = sub.id),
            up(id) AS (SELECT parentId FROM labels WHERE id = \(id) AND parentId IS NOT NULL
                       UNION SELECT l.parentId FROM labels l JOIN up ON l.id = up.id WHERE l.parentId IS NOT NULL)
        SELECT id FROM sub UNION SELECT id FROM up
        """
    }

    /// Ancestors and descendants of a label.
    public func relatedLabelIds(_ labelId: Int64) throws -> Set<Int64> {
        try read { db in try Catalog.relatedLabels(db, labelId) }
    }

    /// Accepted or quarantined images of `labelId` whose label check is still `unverified` (with
    /// `includingUnscored`, also those passed as `verified` without a score), oldest first: what
    /// `ImageRecord.awaitsLabelCheck` says of one row.
    public func unverifiedImages(labelId: Int64, includingUnscored: Bool = false, limit: Int = 1000) throws -> [ImageRecord] {
        try read { db in
            try db.all(ImageRecord.self, """
                SELECT * FROM images WHERE labelId = ? AND \(Self.awaitingLabelCheck(includingUnscored: includingUnscored))
                ORDER BY createdAt, id LIMIT ?
                """, [labelId, limit])
        }
    }

    /// `ImageRecord.awaitsLabelCheck` in SQL: accepted or quarantined, still `unverified` (with
    /// `includingUnscored`, also `verified` without a score: no other label could be told from theirs, so no
    /// model has judged them), and not decided on by a reviewer.
    static func awaitingLabelCheck(includingUnscored: Bool) -> String {
        let unscored = includingUnscored ? " OR (labelCheck = 'verified' AND labelScore IS NULL)" : ""
        return "status IN ('accepted', 'quarantined') AND (labelCheck = 'unverified'\(unscored)) AND \(notReviewed)"
    }
    /// Leaves out images a reviewer decided on (`ImageRecord.reviewed`): no re-check overrules a person's word.
    static let notReviewed = "reasons NOT LIKE '%\"review.%'"

    /// Labels with unverified accepted or quarantined images (with `includingUnscored`, also images passed as
    /// `verified` without a score: no other label to tell them from when they came), and how many accepted
    /// images they have now.
    public func labelsWithUnverifiedImages(includingUnscored: Bool = false) throws -> [(labelId: Int64, accepted: Int)] {
        try read { db in
            try db.rows("""
                SELECT u.labelId, (SELECT COUNT(*) FROM images a WHERE a.labelId = u.labelId AND a.status = 'accepted') AS accepted
                FROM (SELECT DISTINCT labelId FROM images WHERE \(Self.awaitingLabelCheck(includingUnscored: includingUnscored))) u
                """).map { ($0.int("labelId") ?? 0, Int($0.int("accepted") ?? 0)) }
        }
    }

    /// A background re-check's verdict on one image.
    public struct LabelCheckResult: Sendable {
        public var imageId: String, state: String, score: Double?, suggestedLabelId: Int64?, suggestedScore: Double?
        public init(imageId: String, state: String, score: Double?, suggestedLabelId: Int64?, suggestedScore: Double?) {
            (self.imageId, self.state, self.score, self.suggestedLabelId, self.suggestedScore) = (imageId, state, score, suggestedLabelId, suggestedScore)
        }
    }

    /// Stores background re-checks in one transaction: a mismatch moves the accepted image to quarantine with
    /// `label.mismatch`, and adds the reason to one quarantined for another. Each applies only while its image
    /// is still accepted or quarantined and not yet judged by a model (`ImageRecord.awaitsLabelCheck`: nor
    /// decided on by a reviewer), or with `reconsideringVerified` while it is still accepted as `verified` and
    /// no reviewer has decided on it; returns how many applied. Re-checks of images that await one are not
    /// flushed to disk (see `write(durable:)`): lost to a power cut, the images still await them, and the next
    /// background pass makes them again, as a verdict's job runs again. Reconsiderations are: nothing would
    /// make them again.
    @discardableResult
    public func applyLabelChecks(_ results: [LabelCheckResult], reconsideringVerified: Bool = false) throws -> Int {
        guard !results.isEmpty else { return 0 }
        return try write(durable: reconsideringVerified) { db in
            try db.serializeCommits()
            var applied = 0
            for result in results {
                guard var image = try db.find(ImageRecord.self, result.imageId, forUpdate: true),
                      image.awaitsLabelCheck || (reconsideringVerified && image.reconsiderable) else { continue }
                image.labelCheck = result.state
                image.labelScore = result.score
                image.suggestedLabelId = result.suggestedLabelId
                image.suggestedScore = result.suggestedScore
                let waiting = image.status == .quarantined, moved = result.state == "mismatch" && !waiting
                if result.state == "mismatch" {
                    image.status = .quarantined
                    if !image.reasonCodes.contains("label.mismatch") {
                        image.reasons = ImageRecord.encodeReasons(image.reasonCodes + ["label.mismatch"])
                    }
                }
                // An image waiting in quarantine keeps its place in the review queue (longest waiting first).
                if !waiting { image.updatedAt = Date() }
                try db.update(image)
                // The index holds accepted images only: it learns of one that left.
                if moved { try Catalog.touchEmbedding(db, imageId: result.imageId) }
                applied += 1
            }
            return applied
        }
    }

    public func labelClusters(labelId: Int64) throws -> LabelClustersRecord? {
        try read { db in try db.find(LabelClustersRecord.self, labelId, column: "labelId") }
    }

    public func allLabelClusters() throws -> [Int64: LabelClustersRecord] {
        try read { db in try db.all(LabelClustersRecord.self, "SELECT * FROM labelClusters").reduce(into: [:]) { $0[$1.labelId] = $1 } }
    }

    /// Not flushed to disk (see `write(durable:)`): clusters lost to a power cut are computed again when
    /// next asked for.
    public func saveLabelClusters(_ record: LabelClustersRecord) throws {
        try write(durable: false) { db in
            try db.execute("DELETE FROM labelClusters WHERE labelId = ?", [record.labelId])
            try db.insert(record)
        }
    }

    /// The embedding stored for an image.
    public func embedding(imageId: String) throws -> (model: String, vector: Data)? {
        try read { db in
            try db.row("SELECT model, vector FROM embeddings WHERE imageId = ?", [imageId])
                .map { ($0.string("model") ?? "", $0.data("vector") ?? Data()) }
        }
    }
}
