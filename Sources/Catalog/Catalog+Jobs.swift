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
        // One statement: the oldest ready job, taken and returned.
        guard let job = try db.one(JobRecord.self, """
            UPDATE jobs SET state = 'running', attempts = attempts + 1, leaseUntil = ?, leasedBy = ?, updatedAt = ?
            WHERE id = (SELECT id FROM jobs WHERE (state = 'queued' AND runAfter <= ?) OR (state = 'running' AND leaseUntil < ?)
                        ORDER BY runAfter, id LIMIT 1\(db.skipLocked))
            RETURNING *
            """, [now.addingTimeInterval(lease), worker, now, now, now]) else { return nil }
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
    /// mismatch). The embedding is stored with the image.
    public func complete(job: JobRecord, worker: String, verdict: Verdict, nearDistance: Int, watermark: Int64 = 0,
                         decide: (@Sendable (inout Verdict, CommitContext) throws -> Void)? = nil) throws -> ImageRecord? {
        try write(durable: false) { db in
            try Catalog.complete(db, job: job, worker: worker, verdict: verdict, nearDistance: nearDistance, watermark: watermark, decide: decide)
        }
    }

    /// `complete`, then, in the same transaction, `claimJob` for the worker's next job (nil when none is
    /// ready): a worker that keeps busy takes one write transaction an image instead of two.
    public func completeAndClaim(job: JobRecord, worker: String, verdict: Verdict, nearDistance: Int, watermark: Int64 = 0,
                                 decide: (@Sendable (inout Verdict, CommitContext) throws -> Void)? = nil,
                                 lease: TimeInterval, now: Date = Date()) throws -> (stored: ImageRecord?, next: LeasedJob?) {
        let start = ContinuousClock.now
        defer { lookedAtQueue(since: start) }
        return try write(durable: false) { db in
            // The claim first: on PostgreSQL the verdict takes the commit lock, held until the commit, and the
            // claim need not be inside it.
            let next = try Catalog.claim(db, worker: worker, lease: lease, now: now)
            let stored = try Catalog.complete(db, job: job, worker: worker, verdict: verdict, nearDistance: nearDistance,
                                              watermark: watermark, decide: decide)
            return (stored, next)
        }
    }

    static func complete(_ db: Tx, job: JobRecord, worker: String, verdict: Verdict, nearDistance: Int, watermark: Int64,
                         decide: (@Sendable (inout Verdict, CommitContext) throws -> Void)?) throws -> ImageRecord? {
        guard let jobId = job.id, var current = try db.find(JobRecord.self, jobId, forUpdate: true), current.state == .running,
              current.leasedBy == worker, var image = try db.find(ImageRecord.self, job.imageId, forUpdate: true) else { return nil }
        // From here to the commit, verdicts are serialised (on SQLite by its one writer).
        try db.serializeCommits()
        var v = verdict
        if v.status == .accepted, let phash = v.phash,
           let original = try Catalog.nearDuplicate(db, phash, nearDistance, image.id) {
            v.status = .quarantined
            v.reasons.append("duplicate.near")
            v.duplicateOf = original
        }
        if v.embedding != nil, let decide {
            let context = CommitContext(image: image, newRows: try Catalog.embeddingRows(db, after: watermark),
                                        watermark: watermark, relatedLabels: try Catalog.relatedLabels(db, image.labelId))
            try decide(&v, context)
        }
        image.apply(v)
        try db.update(image)
        if let phash = v.phash { try Catalog.storeBands(db, imageId: image.id, phash: phash) }
        if let vector = v.embedding, let model = v.embeddingModel {
            try Catalog.storeEmbedding(db, imageId: image.id, model: model, vector: vector)
        }
        current.state = .done
        current.leaseUntil = nil
        current.updatedAt = Date()
        try db.update(current)
        return image
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
