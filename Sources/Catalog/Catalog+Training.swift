import Crypto
import Foundation
import HubCore

public struct TrainingJobRecord: Codable, Sendable, CatalogRecord {
    static let table = "trainingJobs"
    public enum State: String, Codable, Sendable { case queued, running, succeeded, failed }
    public var id: String
    public var requesterId: Int64
    /// The request as JSON (labels, descendants, split, seed…).
    public var request: String
    public var state: State
    public var epoch: Int
    /// Learning curves so far, JSON.
    public var progress: String
    public var datasetVersionId: String?
    public var modelId: String?
    public var error: String?
    public var attempts: Int
    public var leaseUntil: Date?
    public var leasedBy: String?
    public var createdAt: Date
    public var updatedAt: Date
}

public struct DatasetVersionRecord: Codable, Sendable, CatalogRecord {
    static let table = "datasetVersions"
    public var id: String
    /// SHA-256 over the sorted `imageId,label,sha256` lines: two versions with the same content share it.
    public var manifestHash: String
    public var labels: String
    public var imageCount: Int
    public var createdAt: Date
}

public struct ModelRecord: Codable, Sendable, CatalogRecord {
    static let table = "models"
    public var id: String
    public var trainingJobId: String
    public var labels: String
    public var datasetVersionId: String
    public var backbone: String
    public var accuracy: Double
    public var report: String
    /// The trained head (JSON of the classifier).
    public var head: String
    public var createdAt: Date

    public init(id: String, trainingJobId: String, labels: String, datasetVersionId: String, backbone: String,
                accuracy: Double, report: String, head: String, createdAt: Date) {
        self.id = id; self.trainingJobId = trainingJobId; self.labels = labels; self.datasetVersionId = datasetVersionId
        self.backbone = backbone; self.accuracy = accuracy; self.report = report; self.head = head; self.createdAt = createdAt
    }
}

/// An accepted, embedded image as training sees it.
public struct TrainingImage: Sendable {
    public let imageId: String
    public let sha256: String
    /// The requested label the image counts for (itself or an ancestor of its own label).
    public let label: String
    public let model: String
    public let vector: Data
    /// What the leak-proof split groups by: perceptual hash, device and client capture time.
    public var phash: Int64? = nil
    public var device: String? = nil
    public var capturedAt: String? = nil
    public var duplicateOf: String? = nil
    /// The canonical rendition's blob (what fine-tuning reads the pixels from; none for embeddings alone).
    public var canonicalKey: String? = nil
}

extension Catalog {
    public func createTrainingJob(requesterId: Int64, request: String) throws -> TrainingJobRecord {
        let now = Date()
        let job = TrainingJobRecord(id: UUID().uuidString.lowercased(), requesterId: requesterId, request: request, state: .queued,
                                    epoch: 0, progress: "[]", datasetVersionId: nil, modelId: nil, error: nil, attempts: 0,
                                    leaseUntil: nil, leasedBy: nil, createdAt: now, updatedAt: now)
        try write { db in _ = try db.insert(job) }
        return job
    }

    public func trainingJob(id: String) throws -> TrainingJobRecord? {
        try read { db in try db.find(TrainingJobRecord.self, id) }
    }

    /// Takes the oldest queued training job, or one whose worker's lease ran out (a crashed node).
    public func claimTrainingJob(worker: String, lease: TimeInterval, now: Date = Date()) throws -> TrainingJobRecord? {
        try write { db in
            guard var job = try db.one(TrainingJobRecord.self, """
                SELECT * FROM trainingJobs WHERE state = 'queued' OR (state = 'running' AND leaseUntil < ?)
                ORDER BY createdAt, id LIMIT 1\(db.skipLocked)
                """, [now]) else { return nil }
            job.state = .running
            job.attempts += 1
            job.leasedBy = worker
            job.leaseUntil = now.addingTimeInterval(lease)
            job.updatedAt = now
            try db.update(job)
            return job
        }
    }

    /// Records an epoch (and extends the lease) while `worker` holds the job.
    public func recordTrainingProgress(id: String, worker: String, epoch: Int, progress: String, lease: TimeInterval) throws {
        try write { db in
            try db.execute("""
                UPDATE trainingJobs SET epoch = ?, progress = ?, leaseUntil = ?, updatedAt = ? WHERE id = ? AND leasedBy = ? AND state = 'running'
                """, [epoch, progress, Date().addingTimeInterval(lease), Date(), id, worker])
        }
    }

    /// Freezes the images a job trains on as an immutable dataset version and links it to the job.
    public func freezeDatasetVersion(jobId: String, labels: [String], images: [TrainingImage]) throws -> DatasetVersionRecord {
        let lines = images.map { "\($0.imageId),\($0.label),\($0.sha256)\n" }.sorted().joined()
        let hash = SHA256.hash(data: Data(lines.utf8)).map { String(format: "%02x", $0) }.joined()
        let version = DatasetVersionRecord(id: UUID().uuidString.lowercased(), manifestHash: hash,
                                           labels: String(decoding: try JSONEncoder().encode(labels), as: UTF8.self),
                                           imageCount: images.count, createdAt: Date())
        try write { db in
            try db.insert(version)
            for image in images {
                try db.execute("INSERT INTO datasetVersionImages (versionId, imageId, label) VALUES (?, ?, ?)",
                               [version.id, image.imageId, image.label])
            }
            try db.execute("UPDATE trainingJobs SET datasetVersionId = ?, updatedAt = ? WHERE id = ?", [version.id, Date(), jobId])
        }
        return version
    }

    /// A version and its images; `split` is the side of the training split each was on (`train`,
    /// `validation`; nil before the training that froze it has split it).
    public func datasetVersion(id: String) throws -> (DatasetVersionRecord, [(imageId: String, label: String, split: String?)])? {
        try read { db in
            guard let version = try db.find(DatasetVersionRecord.self, id) else { return nil }
            let images = try db.rows("SELECT imageId, label, split FROM datasetVersionImages WHERE versionId = ? ORDER BY label, imageId", [id])
                .map { (imageId: $0.string("imageId") ?? "", label: $0.string("label") ?? "", split: $0.string("split")) }
            return (version, images)
        }
    }

    /// Records the training split of a version: `validation` ids on that side, the rest `train`.
    public func recordSplit(versionId: String, validation: [String]) throws {
        try write { db in
            try db.execute("UPDATE datasetVersionImages SET split = 'train' WHERE versionId = ?", [versionId])
            for start in stride(from: 0, to: validation.count, by: 500) {
                let ids = Array(validation[start..<min(start + 500, validation.count)])
                try db.execute("UPDATE datasetVersionImages SET split = 'validation' WHERE versionId = ? AND imageId IN (\(ids.map { _ in "?" }.joined(separator: ",")))",
                               [versionId] + ids)
            }
        }
    }

    /// Finishes a job with its model (or its error), only while `worker` holds it.
    public func finishTrainingJob(id: String, worker: String, model: ModelRecord?, error: String?) throws {
        try write { db in
            guard var job = try db.find(TrainingJobRecord.self, id, forUpdate: true), job.state == .running, job.leasedBy == worker else { return }
            if let model { try db.insert(model) }
            job.state = model != nil ? .succeeded : .failed
            job.modelId = model?.id
            job.error = error
            job.leaseUntil = nil
            job.updatedAt = Date()
            try db.update(job)
        }
    }

    public func model(id: String) throws -> ModelRecord? {
        try read { db in try db.find(ModelRecord.self, id) }
    }

    public func models() throws -> [ModelRecord] {
        try read { db in try db.all(ModelRecord.self, "SELECT * FROM models ORDER BY createdAt DESC, id") }
    }

    /// Accepted, embedded images of each requested label (with its descendants when asked), labelled with
    /// the requested name. An image under two requested labels (one inside the other) counts for the nearer one.
    public func trainingImages(labels: [LabelRecord], descendants: Bool) throws -> [TrainingImage] {
        try read { db in
            var owner: [Int64: String] = [:]
            for label in labels { owner[label.id!] = label.name }
            if descendants {
                // A requested label inside another has fewer descendants: it claims its subtree first.
                let subtrees = try labels.map { ($0.name, try Catalog.descendantIds(db, $0.id!)) }.sorted { $0.1.count < $1.1.count }
                for (name, ids) in subtrees { for id in ids where owner[id] == nil { owner[id] = name } }
            }
            guard !owner.isEmpty else { return [] }
            let ids = owner.keys.map(String.init).joined(separator: ",")
            return try db.rows("""
                SELECT i.id, i.sha256, i.labelId, i.phash, i.device, i.capturedAt, i.duplicateOf, i.canonicalKey, e.model, e.vector FROM images i JOIN embeddings e ON e.imageId = i.id
                WHERE i.status = 'accepted' AND i.labelId IN (\(ids)) ORDER BY i.id
                """).map { row in
                TrainingImage(imageId: row.string("id") ?? "", sha256: row.string("sha256") ?? "", label: owner[row.int("labelId") ?? 0] ?? "",
                              model: row.string("model") ?? "", vector: row.data("vector") ?? Data(),
                              phash: row.int("phash"), device: row.string("device"), capturedAt: row.string("capturedAt"),
                              duplicateOf: row.string("duplicateOf"), canonicalKey: row.string("canonicalKey"))
            }
        }
    }
}

extension Catalog {
    /// Adds accepted images that exist only as embeddings (no blobs): the training benchmark builds its
    /// large cases from augmented copies of real embeddings this way. Never used by the API.
    public func insertSyntheticEmbeddedImages(labelId: Int64, uploaderId: Int64, model: String, vectors: [Data],
                                              phashes: [Int64?]? = nil, devices: [String?]? = nil, capturedAt: [String?]? = nil) throws {
        try write { db in
            let now = Date()
            for (i, vector) in vectors.enumerated() {
                var image = ImageRecord.newUpload(sha256: "synthetic-" + UUID().uuidString.lowercased(), labelId: labelId, uploaderId: uploaderId,
                                                  batchId: nil, device: devices?[i] ?? "benchmark", lat: nil, lon: nil,
                                                  capturedAt: capturedAt?[i] ?? nil, bytes: 0, now: now)
                image.status = .accepted
                image.reasons = "[\"synthetic\"]"
                image.embeddingModel = model
                image.phash = phashes?[i] ?? nil
                try db.insert(image)
                try Catalog.storeEmbedding(db, imageId: image.id, model: model, vector: vector)
            }
        }
    }
}
