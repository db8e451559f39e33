import Foundation
import HubCore

/// What storing an upload did.
public enum UploadOutcome: Sendable, Equatable {
    /// A new image and its pipeline job were committed.
    case created(ImageRecord)
    /// The same bytes were already uploaded under the same label: the existing image.
    case existing(ImageRecord)
}

/// What the pipeline decided about an image.
public struct Verdict: Sendable, Equatable {
    public var status: ImageStatus
    public var reasons: [String]
    public var format: String?
    public var width: Int?
    public var height: Int?
    public var sharpness: Double?
    public var brightness: Double?
    public var contrast: Double?
    public var phash: UInt64?
    public var duplicateOf: String?
    public var canonicalKey: String?
    public var thumbnailKey: String?
    /// The embedding (float16 bytes) and the backbone that made it; set by the embed stage.
    public var embedding: Data?
    public var embeddingModel: String?
    /// JSON of the automatic tags.
    public var tags: String?
    public var labelCheck: String?
    public var labelScore: Double?
    public var suggestedLabelId: Int64?
    public var suggestedScore: Double?

    public init(status: ImageStatus, reasons: [String] = [], format: String? = nil, width: Int? = nil, height: Int? = nil,
                sharpness: Double? = nil, brightness: Double? = nil, contrast: Double? = nil, phash: UInt64? = nil,
                duplicateOf: String? = nil, canonicalKey: String? = nil, thumbnailKey: String? = nil) {
        self.status = status; self.reasons = reasons; self.format = format; self.width = width; self.height = height
        self.sharpness = sharpness; self.brightness = brightness; self.contrast = contrast; self.phash = phash
        self.duplicateOf = duplicateOf; self.canonicalKey = canonicalKey; self.thumbnailKey = thumbnailKey
    }
}

extension Catalog {
    /// The kind of job every upload gets.
    public static let pipelineJob = "pipeline"

    /// Records an upload whose bytes are already durable, with its pipeline job, in one transaction.
    /// The same bytes again from the same uploader under the same label return the existing image;
    /// under another label, or from another uploader, 409 `duplicate.exact`.
    public func recordUpload(_ image: ImageRecord) throws -> UploadOutcome {
        // On PostgreSQL a new image and its job go in as one statement, its own transaction: one round trip
        // instead of four (BEGIN, image, job, COMMIT) on the path every acknowledgement waits for.
        if let postgres = database as? PostgresDatabase, try postgres.autocommit({ db in try Catalog.insertUploadWithJob(db, image) }) {
            return .created(image)
        }
        return try write { db in try Catalog.record(db, image) }
    }

    /// Records a group of uploads whose bytes are already durable, with their jobs, in one transaction: one
    /// commit (one fsync) for the group. Each gets the outcome `recordUpload` would give it.
    public func recordUploads(_ images: [ImageRecord]) throws -> [Result<UploadOutcome, HubError>] {
        try write { db in
            try images.map { image in
                do { return .success(try Catalog.record(db, image)) } catch let e as HubError { return .failure(e) }
            }
        }
    }

    /// One upload's row and job inside `db`'s transaction (see `recordUpload` for the outcomes).
    static func record(_ db: Tx, _ image: ImageRecord) throws -> UploadOutcome {
        // The insert is tried first (one statement fewer for a new image, the common case).
        if try db.insertIfAbsent(image) {
            try db.insert(JobRecord(id: nil, imageId: image.id, kind: Catalog.pipelineJob, state: .queued, attempts: 0,
                                    runAfter: image.createdAt, leaseUntil: nil, leasedBy: nil, lastError: nil,
                                    createdAt: image.createdAt, updatedAt: image.createdAt))
            return .created(image)
        }
        if let existing = try db.find(ImageRecord.self, image.sha256, column: "sha256") {
            // A retry is the same uploader's: it gets its image back. Another uploader's copy is refused,
            // since an id it may not look at would be no acknowledgement.
            if existing.labelId == image.labelId, existing.uploaderId == image.uploaderId { return .existing(existing) }
            let whose = existing.labelId == image.labelId ? "by another uploader" : "under another label"
            throw HubError(409, "duplicate.exact", "these bytes were already uploaded as image \(existing.id) \(whose)",
                           details: ["existing_id": existing.id])
        }
        throw HubError(409, "image.exists", "image \(image.id) already exists")
    }

    /// Inserts a new image and its pipeline job in one PostgreSQL statement; false when the bytes (or
    /// the id) are already there.
    static func insertUploadWithJob(_ db: Tx, _ image: ImageRecord) throws -> Bool {
        let columns = try RowEncoder.columns(of: image)
        return try !db.rows("""
            WITH image AS (INSERT INTO images (\(columns.map { db.quote($0.0) }.joined(separator: ", "))) VALUES (\(db.placeholders(columns.count)))
                           ON CONFLICT DO NOTHING RETURNING id, createdAt)
            INSERT INTO jobs (imageId, kind, state, attempts, runAfter, createdAt, updatedAt)
            SELECT id, ?, 'queued', 0, createdAt, createdAt, createdAt FROM image RETURNING id
            """, columns.map(\.1) + [Catalog.pipelineJob]).isEmpty
    }

    /// The image `id`, or nil.
    public func image(id: String) throws -> ImageRecord? {
        try read { db in try db.find(ImageRecord.self, id) }
    }

    /// The images with these ids (any order; missing ids are skipped).
    public func images(ids: [String]) throws -> [ImageRecord] {
        try read { db in try db.find(ImageRecord.self, ids: ids) }
    }

    /// Images under the given labels with a status, in id order after `cursor`, at most `limit`.
    public func images(labelIds: [Int64], status: ImageStatus?, reason: String? = nil, uploaderId: Int64? = nil,
                       after cursor: String?, limit: Int) throws -> [ImageRecord] {
        guard !labelIds.isEmpty else { return [] }
        return try read { db in
            var sql = "SELECT * FROM images WHERE labelId IN (\(labelIds.map(String.init).joined(separator: ",")))"
            var arguments: [any SQLBindable] = []
            if let status { sql += " AND status = ?"; arguments.append(status.rawValue) }
            if let reason {
                // Reasons are stored as a JSON array of codes: the code with its quotes, LIKE's wildcards escaped.
                let escaped = reason.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "%", with: "\\%")
                    .replacingOccurrences(of: "_", with: "\\_")
                sql += " AND reasons LIKE ? ESCAPE '\\'"
                arguments.append("%\"\(escaped)\"%")
            }
            if let uploaderId { sql += " AND uploaderId = ?"; arguments.append(uploaderId) }
            if let cursor { sql += " AND id > ?"; arguments.append(cursor) }
            return try db.all(ImageRecord.self, sql + " ORDER BY id LIMIT ?", arguments + [limit])
        }
    }

    /// Image counts by status over the whole hub.
    public func statusCounts() throws -> [ImageStatus: Int] {
        try read { db in
            var out: [ImageStatus: Int] = [:]
            for r in try db.rows("SELECT status, COUNT(*) AS n FROM images GROUP BY status") {
                if let s = ImageStatus(rawValue: r.string("status") ?? "") { out[s] = Int(r.int("n") ?? 0) }
            }
            return out
        }
    }

    /// Quarantined images, the longest waiting first, at most `limit`: the review queue.
    public func quarantineQueue(limit: Int) throws -> [ImageRecord] {
        try read { db in
            try db.all(ImageRecord.self, "SELECT * FROM images WHERE status = 'quarantined' ORDER BY updatedAt, id LIMIT ?", [limit])
        }
    }

    /// How many rejected or quarantined images carry each reason code.
    public func reasonCounts() throws -> [String: Int] {
        let rows = try read { db in
            try db.rows("SELECT reasons, COUNT(*) AS n FROM images WHERE status IN ('rejected', 'quarantined') GROUP BY reasons")
        }
        var out: [String: Int] = [:]
        for row in rows {
            let codes = (try? JSONDecoder().decode([String].self, from: Data((row.string("reasons") ?? "[]").utf8))) ?? []
            for code in codes { out[code, default: 0] += Int(row.int("n") ?? 0) }
        }
        return out
    }

    /// One minute of the hub's activity: uploads stored, and images that reached a final status (or were
    /// reviewed) in it, hub-wide whichever node did the work.
    public struct MinuteActivity: Sendable, Equatable {
        public var minute: Date
        public var uploads: Int
        public var decided: Int
    }

    /// The last `minutes` whole minutes before `now`'s minute, and `now`'s own so far, oldest first (a minute
    /// without activity included, with zeros). Both counts go through an index on their time column.
    public func activity(minutes: Int = 10, now: Date = Date()) throws -> [MinuteActivity] {
        let current = Date(timeIntervalSince1970: (now.timeIntervalSince1970 / 60).rounded(.down) * 60)
        let since = current.addingTimeInterval(-60 * Double(minutes))
        let (uploads, decided) = try read { db -> ([String: Int], [String: Int]) in
            // A minute as text, the same in both engines: `YYYY-MM-DD HH:MM` in UTC.
            let minute = { (column: String) in
                db.dialect == .postgres ? "to_char(\(column) AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI')" : "substr(\(column), 1, 16)"
            }
            func count(_ sql: String) throws -> [String: Int] {
                try db.rows(sql, [since]).reduce(into: [:]) { $0[$1.string("minute") ?? ""] = Int($1.int("n") ?? 0) }
            }
            return (try count("SELECT \(minute("createdAt")) AS minute, COUNT(*) AS n FROM images WHERE createdAt >= ? GROUP BY 1"),
                    try count("SELECT \(minute("updatedAt")) AS minute, COUNT(*) AS n FROM images WHERE updatedAt >= ? AND status <> 'pending' GROUP BY 1"))
        }
        let format = DateFormatter()
        format.locale = Locale(identifier: "en_US_POSIX")
        format.timeZone = TimeZone(identifier: "UTC")
        format.dateFormat = "yyyy-MM-dd HH:mm"
        return (0...minutes).map { n in
            let at = since.addingTimeInterval(60 * Double(n))
            let key = format.string(from: at)
            return MinuteActivity(minute: at, uploads: uploads[key] ?? 0, decided: decided[key] ?? 0)
        }
    }

    /// The number of bands a perceptual hash is cut into (its bytes).
    static let phashBands = 8

    /// An accepted image (other than `id`) whose perceptual hash is within `distance` bits, or nil; the
    /// nearest, and the smallest id among equally near ones.
    ///
    /// Two 64-bit hashes that differ in at most 7 bits agree on at least one of their 8 bytes (each differing
    /// bit spoils one byte at most), so for distances up to 7 (the default is 6) only images sharing a byte
    /// with `phash` in the same place are compared, through the `phashBands` index, instead of every accepted
    /// image: the commit that runs this holds the catalog's write lock, and a scan grows with the hub.
    /// Larger distances scan. (On SQLite, `+status` keeps the planner from walking the status index, every
    /// accepted image, instead of looking the candidates up by id.)
    static func nearDuplicate(_ db: Tx, _ phash: UInt64, _ distance: Int, _ id: String) throws -> String? {
        let query = nearDuplicateQuery(db, phash, distance, id)
        return try db.scalar(query.sql, query.arguments).string
    }

    /// The statement `nearDuplicate` runs.
    static func nearDuplicateQuery(_ db: Tx, _ phash: UInt64, _ distance: Int, _ id: String) -> Statement {
        let hash = Int64(bitPattern: phash)
        guard distance < phashBands else {
            return Statement("""
                SELECT id FROM images WHERE status = 'accepted' AND phash IS NOT NULL AND id != ?
                AND hamming(phash, ?) <= ? ORDER BY hamming(phash, ?), id LIMIT 1
                """, [id, hash, distance, hash])
        }
        let bands = (0..<phashBands).map { "(band = \($0) AND value = ?)" }.joined(separator: " OR ")
        let status = db.dialect == .sqlite ? "+status" : "status"
        return Statement("""
            SELECT id FROM images WHERE id IN (SELECT imageId FROM phashBands WHERE \(bands))
            AND \(status) = 'accepted' AND id != ? AND hamming(phash, ?) <= ? ORDER BY hamming(phash, ?), id LIMIT 1
            """, bandValues(phash) + [id, hash, distance, hash])
    }

    /// The bytes of a perceptual hash, band 0 the lowest.
    static func bandValues(_ phash: UInt64) -> [Int] {
        (0..<phashBands).map { Int((phash >> (8 * UInt64($0))) & 0xFF) }
    }

    /// Records the bands of an image's perceptual hash (replacing earlier ones).
    static func storeBands(_ db: Tx, imageId: String, phash: UInt64) throws {
        try db.together([bandsStatement(imageId: imageId, phash: phash)])
    }

    /// The statement `storeBands` runs.
    static func bandsStatement(imageId: String, phash: UInt64) -> Statement {
        let rows = Array(repeating: "(?, ?, ?)", count: phashBands).joined(separator: ", ")
        return Statement("""
            INSERT INTO phashBands (imageId, band, value) VALUES \(rows)
            ON CONFLICT (imageId, band) DO UPDATE SET value = excluded.value
            """, bandValues(phash).enumerated().flatMap { [imageId, $0.offset, $0.element] as [any SQLBindable] })
    }

    /// The accepted image (other than `excluding`) nearest to `phash` within `distance` bits, as the
    /// pipeline's commit looks for it.
    public func nearDuplicate(of phash: UInt64, within distance: Int, excluding id: String = "") throws -> String? {
        try read { db in try Catalog.nearDuplicate(db, phash, distance, id) }
    }

    /// Admin review of a quarantined image: accept or reject it, recording the reviewer's reason.
    public func review(imageId: String, accept: Bool, reason: String?) throws -> ImageRecord {
        try write { db in
            try db.serializeCommits()
            guard var image = try db.find(ImageRecord.self, imageId, forUpdate: true) else {
                throw HubError(404, "image.unknown", "no image \(imageId)")
            }
            guard image.status == .quarantined else {
                throw HubError(409, "review.not_quarantined", "image \(imageId) is \(image.status.rawValue), not quarantined")
            }
            image.status = accept ? .accepted : .rejected
            image.reasons = ImageRecord.encodeReasons(image.reasonCodes + [accept ? "review.accepted" : (reason ?? "review.rejected")])
            image.updatedAt = Date()
            try db.update(image)
            try Catalog.touchEmbedding(db, imageId: imageId)
            return image
        }
    }

    /// Admin review that moves an image to the label it shows: a quarantined image is accepted under
    /// `labelId`, an accepted one (a likely label error a training report found) keeps its status. Either way
    /// its label is now a person's word: `review.relabelled` is added to its reasons and its label check is
    /// `verified`. Rejected and pending images cannot be relabelled (409).
    public func relabel(imageId: String, to labelId: Int64) throws -> ImageRecord {
        try write { db in
            try db.serializeCommits()
            guard var image = try db.find(ImageRecord.self, imageId, forUpdate: true) else {
                throw HubError(404, "image.unknown", "no image \(imageId)")
            }
            guard image.status == .quarantined || image.status == .accepted else {
                throw HubError(409, "review.not_relabellable", "image \(imageId) is \(image.status.rawValue); only quarantined or accepted images can be relabelled")
            }
            guard try db.find(LabelRecord.self, labelId) != nil else {
                throw HubError(422, "label.unknown", "no label \(labelId)")
            }
            image.labelId = labelId
            image.status = .accepted
            image.reasons = ImageRecord.encodeReasons(image.reasonCodes + ["review.relabelled"])
            image.labelCheck = "verified"
            image.labelScore = nil
            image.suggestedLabelId = nil
            image.suggestedScore = nil
            image.updatedAt = Date()
            try db.update(image)
            try Catalog.touchEmbedding(db, imageId: imageId)
            return image
        }
    }
}
