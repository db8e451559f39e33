import Foundation
import HubCore

/// A job a worker holds, with the image it is about.
public struct LeasedJob: Sendable {
    public let job: JobRecord
    public let image: ImageRecord
}

extension Catalog {
    /// Takes the oldest ready job (queued and due, or running with an expired lease) for `worker`.
    /// Not flushed to disk (see `write(durable:)`): a claim lost to a power cut leaves the job to be claimed again.
    public func claimJob(worker: String, lease: TimeInterval, now: Date = Date()) throws -> LeasedJob? {
        let start = ContinuousClock.now
        defer { lookedAtQueue(since: start) }
        return try write(durable: false) { db in try Catalog.claim(db, worker: worker, lease: lease, now: now) }
    }

    /// A claim that began at `start` has seen every job announced before then (see `Notifications`).
    private func lookedAtQueue(since start: ContinuousClock.Instant) {
        (database as? PostgresDatabase)?.looked(Catalog.jobsChannel, at: start)
    }

    /// On PostgreSQL a job another node is claiming is passed over (`SKIP LOCKED`), so claims never queue
    /// behind each other.
    static func claim(_ db: Tx, worker: String, lease: TimeInterval, now: Date) throws -> LeasedJob? {
        // One statement: the oldest ready job, taken and returned (on PostgreSQL with its image).
        let take = """
            UPDATE jobs SET state = 'running', attempts = attempts + 1, leaseUntil = ?, leasedBy = ?, updatedAt = ?
            WHERE id = (SELECT id FROM jobs WHERE (state = 'queued' AND runAfter <= ?) OR (state = 'running' AND leaseUntil < ?)
                        ORDER BY runAfter, id LIMIT 1\(db.skipLocked))
            RETURNING *
            """
        let arguments: [any SQLBindable] = [now.addingTimeInterval(lease), worker, now, now, now]
        if db.dialect == .postgres {
            guard let row = try db.row("WITH j AS (\(take)) SELECT j.*, NULL AS image_follows, i.* FROM j LEFT JOIN images i ON i.id = j.imageId",
                                       arguments) else { return nil }
            let (jobColumns, imageColumns) = row.split(at: "image_follows")
            let job = try JobRecord(from: RowDecoder(row: jobColumns))
            guard imageColumns.string("id") != nil else {
                throw HubError(500, "internal.missing_image", "job \(job.id!) names missing image \(job.imageId)")
            }
            return LeasedJob(job: job, image: try ImageRecord(from: RowDecoder(row: imageColumns)))
        }
        guard let job = try db.one(JobRecord.self, take, arguments) else { return nil }
        guard let image = try db.find(ImageRecord.self, job.imageId) else {
            throw HubError(500, "internal.missing_image", "job \(job.id!) names missing image \(job.imageId)")
        }
        return LeasedJob(job: job, image: image)
    }

    /// Commits a pipeline verdict and completes the job in one transaction, if `worker` still holds it.
    /// A near-duplicate check against accepted images runs inside the same transaction, so two copies
    /// processed at once cannot both be accepted. Returns the image as stored, or nil when the lease was lost.
    /// Not flushed to disk (see `write(durable:)`): a verdict lost to a power cut is only worked out again,
    /// and the renditions it names were flushed before it. Clients may have seen it meanwhile: after such a
    /// power cut, an image can go back from its final status to `pending` until its job runs again.
    ///
    /// When the verdict carries an embedding, `decide` runs inside the transaction too, with the embeddings
    /// committed since `watermark` (by any process): it may change the verdict (semantic duplicate, label
    /// mismatch). The embedding is stored with the image; `stored` learns its row once committed (an
    /// in-memory index takes it at once instead of at its next catch-up).
    public func complete(job: JobRecord, worker: String, verdict: Verdict, nearDistance: Int, watermark: Int64 = 0,
                         decide: (@Sendable (inout Verdict, CommitContext) throws -> Void)? = nil,
                         stored: (@Sendable (EmbeddingRow) -> Void)? = nil) throws -> ImageRecord? {
        let outcome = try write(durable: false) { db in
            try Catalog.complete(db, job: job, worker: worker, verdict: verdict, nearDistance: nearDistance, watermark: watermark, decide: decide)
        }
        if let row = outcome?.embedding { stored?(row) }
        return outcome?.image
    }

    /// `complete`, then, in the same transaction, `claimJob` for the worker's next job (nil when none is
    /// ready): a worker that keeps busy takes one write transaction an image instead of two.
    public func completeAndClaim(job: JobRecord, worker: String, verdict: Verdict, nearDistance: Int, watermark: Int64 = 0,
                                 decide: (@Sendable (inout Verdict, CommitContext) throws -> Void)? = nil,
                                 stored: (@Sendable (EmbeddingRow) -> Void)? = nil,
                                 lease: TimeInterval, now: Date = Date()) throws -> (stored: ImageRecord?, next: LeasedJob?) {
        let start = ContinuousClock.now
        defer { lookedAtQueue(since: start) }
        let (outcome, next) = try write(durable: false) { db in
            // The claim first: on PostgreSQL the verdict takes the commit lock, held until the commit, and the
            // claim need not be inside it.
            let next = try Catalog.claim(db, worker: worker, lease: lease, now: now)
            let outcome = try Catalog.complete(db, job: job, worker: worker, verdict: verdict, nearDistance: nearDistance,
                                               watermark: watermark, decide: decide)
            return (outcome, next)
        }
        if let row = outcome?.embedding { stored?(row) }
        return (outcome?.image, next)
    }

    static func complete(_ db: Tx, job: JobRecord, worker: String, verdict: Verdict, nearDistance: Int, watermark: Int64,
                         decide: (@Sendable (inout Verdict, CommitContext) throws -> Void)?) throws -> (image: ImageRecord, embedding: EmbeddingRow?)? {
        // The job is marked done first, if the worker still holds it, which locks its row; then its image is
        // read and locked. From then to the commit, verdicts are serialised: on SQLite by its one writer, on
        // PostgreSQL by the commit lock, taken in the same statement (each statement there costs a round
        // trip, most of a verdict's catalog time) with the label's relatives when the checks need them. The
        // lookups that must see every commit made before the lock come in the next statement: a statement's
        // snapshot is taken when it starts.
        guard let jobId = job.id else { return nil }
        let done = "UPDATE jobs SET state = 'done', leaseUntil = NULL, updatedAt = ? WHERE id = ? AND state = 'running' AND leasedBy = ?"
        let arguments: [any SQLBindable] = [Date(), jobId, worker]
        let nearHash = verdict.status == .accepted ? verdict.phash : nil
        let checks = verdict.embedding != nil && decide != nil
        var image: ImageRecord
        let lookups: (near: String?, context: CommitContext?)
        if db.dialect == .postgres {
            let related = checks ? ", array_to_string(ARRAY(\(relatedLabelsQuery(of: "i.labelId"))), ',') AS related_labels" : ""
            guard let row = try db.row("""
                WITH j AS (\(done) RETURNING imageId) SELECT i.*\(related)
                FROM pg_advisory_xact_lock(\(Tx.commitLock)) AS commit_lock, images i JOIN j ON i.id = j.imageId FOR UPDATE OF i
                """, arguments) else { return nil }
            let locked = try ImageRecord(from: RowDecoder(row: row))
            let relatives = Set((row.string("related_labels") ?? "").split(separator: ",").compactMap { Int64($0) })
            let seen = try Catalog.commitLookups(db, nearHash: nearHash, distance: nearDistance, imageId: locked.id,
                                                 rowsAfter: checks ? watermark : nil)
            image = locked
            lookups = (seen.near, seen.rows.map { CommitContext(image: locked, newRows: $0, watermark: watermark, relatedLabels: relatives) })
        } else {
            guard try !db.rows(done + " RETURNING id", arguments).isEmpty,
                  let locked = try db.find(ImageRecord.self, job.imageId, forUpdate: true) else { return nil }
            image = locked
            lookups = (try nearHash.flatMap { try Catalog.nearDuplicate(db, $0, nearDistance, locked.id) },
                       checks ? CommitContext(image: locked, newRows: try Catalog.embeddingRows(db, after: watermark),
                                              watermark: watermark, relatedLabels: try Catalog.relatedLabels(db, locked.labelId)) : nil)
        }
        var v = verdict
        if let original = lookups.near {
            v.status = .quarantined
            v.reasons.append("duplicate.near")
            v.duplicateOf = original
        }
        if let context = lookups.context, let decide {
            try decide(&v, context)
        }
        image.apply(v)
        // The image, its hash bands and its embedding: one round trip on PostgreSQL.
        var writes = [try db.updateStatement(image)]
        if let phash = v.phash { writes.append(Catalog.bandsStatement(imageId: image.id, phash: phash)) }
        guard let vector = v.embedding, let model = v.embeddingModel else {
            try db.together(writes)
            return (image, nil)
        }
        writes += Catalog.embeddingStatements(db, imageId: image.id, model: model, vector: vector)
        let seq = try db.together(writes).first?.int("seq") ?? 0
        return (image, EmbeddingRow(seq: seq, imageId: image.id, labelId: image.labelId, status: image.status, model: model, vector: vector))
    }

    /// Records a failed attempt: retried after `retryAfter`, or dead-lettered (image rejected with
    /// `internal.failed`) once `maxAttempts` is reached. Returns true when the job was dead-lettered.
    @discardableResult
    public func fail(job: JobRecord, worker: String, error: String, retryAfter: TimeInterval, maxAttempts: Int) throws -> Bool {
        try write { db in
            guard let jobId = job.id, var current = try db.find(JobRecord.self, jobId, forUpdate: true), current.state == .running,
                  current.leasedBy == worker else { return false }
            current.lastError = error
            current.leaseUntil = nil
            current.updatedAt = Date()
            if current.attempts >= maxAttempts {
                current.state = .dead
                if var image = try db.find(ImageRecord.self, job.imageId, forUpdate: true) {
                    image.apply(Verdict(status: .rejected, reasons: ["internal.failed"]))
                    try db.update(image)
                }
            } else {
                current.state = .queued
                current.runAfter = Date().addingTimeInterval(retryAfter)
            }
            try db.update(current)
            return current.state == .dead
        }
    }

    /// Takes (or renews) the pass `name` for `holder` until `ttl` seconds from now, unless another holder's
    /// lease on it is still running: periodic passes run on one node at a time, and a node that dies hands
    /// its passes on when their lease runs out.
    public func takePass(_ name: String, holder: String, for ttl: TimeInterval, now: Date = Date()) throws -> Bool {
        try write(durable: false) { db in
            try db.execute("INSERT INTO passes (name, holder, leaseUntil) VALUES (?, '', ?) ON CONFLICT (name) DO NOTHING",
                           [name, Date.distantPast])
            return try !db.rows("UPDATE passes SET holder = ?, leaseUntil = ? WHERE name = ? AND (holder = ? OR leaseUntil < ?) RETURNING name",
                                [holder, now.addingTimeInterval(ttl), name, holder, now]).isEmpty
        }
    }

    /// The backlog counted no further than `limit`: what backpressure needs to know, at a cost that does not
    /// grow with the backlog.
    public func backlog(upTo limit: Int) throws -> Int {
        try read { db in
            Int(try db.int("SELECT COUNT(*) FROM (SELECT 1 FROM jobs WHERE state IN ('queued', 'running') LIMIT ?) AS waiting", [limit]) ?? 0)
        }
    }

    /// Admits one more upload without counting the backlog, when the last count plus the uploads admitted
    /// since stays under `limit` and that count is younger than `maxAge`; false when the backlog must be
    /// counted (`admitUpload`). On one API node the estimate never falls below the real backlog (it grows only
    /// through this node's uploads); other nodes' uploads are seen within `maxAge`.
    public func admitFromEstimate(under limit: Int, maxAge: Duration = .seconds(1), now: ContinuousClock.Instant = .now) -> Bool {
        admission.withLock { estimate in
            guard var e = estimate, now - e.countedAt < maxAge, e.counted + e.admittedSince + 1 < limit else { return false }
            e.admittedSince += 1
            estimate = e
            return true
        }
    }

    /// Counts the backlog (no further than `limit`) to admit one more upload: nil when admitted, else the
    /// backlog counted. The count is what `admitFromEstimate` goes on from.
    public func admitUpload(under limit: Int, now: ContinuousClock.Instant = .now) throws -> Int? {
        let counted = try backlog(upTo: limit)
        let admitted = counted < limit
        admission.withLock { $0 = BacklogEstimate(counted: counted, countedAt: now, admittedSince: admitted ? 1 : 0) }
        return admitted ? nil : counted
    }

    /// Jobs not yet finished (queued or running): the processing backlog.
    public func backlog() throws -> Int {
        try read { db in Int(try db.int("SELECT COUNT(*) FROM jobs WHERE state IN ('queued', 'running')") ?? 0) }
    }

    /// Dead-lettered jobs, newest first.
    public func deadJobs(limit: Int = 100) throws -> [JobRecord] {
        try read { db in try db.all(JobRecord.self, "SELECT * FROM jobs WHERE state = 'dead' ORDER BY id DESC LIMIT ?", [limit]) }
    }

    /// Every job for `imageId` (tests and the CLI use it to see exactly-once processing).
    public func jobs(imageId: String) throws -> [JobRecord] {
        try read { db in try db.all(JobRecord.self, "SELECT * FROM jobs WHERE imageId = ? ORDER BY id", [imageId]) }
    }
}

extension ImageRecord {
    mutating func apply(_ v: Verdict) {
        status = v.status
        reasons = ImageRecord.encodeReasons(v.reasons)
        format = v.format ?? format
        width = v.width ?? width
        height = v.height ?? height
        sharpness = v.sharpness ?? sharpness
        brightness = v.brightness ?? brightness
        contrast = v.contrast ?? contrast
        phash = v.phash.map { Int64(bitPattern: $0) } ?? phash
        duplicateOf = v.duplicateOf ?? duplicateOf
        canonicalKey = v.canonicalKey ?? canonicalKey
        thumbnailKey = v.thumbnailKey ?? thumbnailKey
        tags = v.tags ?? tags
        labelCheck = v.labelCheck ?? labelCheck
        labelScore = v.labelScore ?? labelScore
        suggestedLabelId = v.suggestedLabelId ?? suggestedLabelId
        suggestedScore = v.suggestedScore ?? suggestedScore
        embeddingModel = v.embeddingModel ?? embeddingModel
        updatedAt = Date()
    }
}

/// What upload admission last counted of the backlog, when, and how many uploads it admitted since.
struct BacklogEstimate {
    var counted: Int
    var countedAt: ContinuousClock.Instant
    var admittedSince: Int
}
