import BlobStore
import Catalog
import Foundation
import HubCore
import Imaging
import Metrics
import Verify

/// Turns a received upload into a durable image with a pending pipeline job: the bytes are fsynced and
/// renamed into the blob store, then the image row and its job commit in one transaction. Only then is
/// the upload acknowledged.
public struct Ingestor: Sendable {
    public let catalog: Catalog
    public let blobs: any BlobStore
    public let verifier: Verifier

    public init(catalog: Catalog, blobs: any BlobStore, settings: HubSettings) {
        self.catalog = catalog
        self.blobs = blobs
        self.verifier = Verifier(settings: settings)
    }

    /// The optional fields of an upload, validated.
    public struct Metadata: Sendable {
        public var label: String
        public var batch: String?
        public var device: String?
        public var lat: Double?
        public var lon: Double?
        public var capturedAt: String?

        public init(label: String, batch: String? = nil, device: String? = nil, lat: Double? = nil, lon: Double? = nil, capturedAt: String? = nil) {
            self.label = label; self.batch = batch; self.device = device; self.lat = lat; self.lon = lon; self.capturedAt = capturedAt
        }

        /// Parses form fields, refusing missing labels, bad coordinates and bad timestamps with reason codes.
        public init(fields: [String: String]) throws {
            guard let label = fields["label"]?.trimmingCharacters(in: .whitespaces), !label.isEmpty else {
                throw HubError(400, "field.missing", "the `label` field is required")
            }
            self.label = label
            batch = fields["batch"].flatMap { $0.isEmpty ? nil : $0 }
            device = fields["device"].flatMap { $0.isEmpty ? nil : String($0.prefix(200)) }
            lat = try Metadata.coordinate(fields["lat"], name: "lat", limit: 90)
            lon = try Metadata.coordinate(fields["lon"], name: "lon", limit: 180)
            if (lat == nil) != (lon == nil) { throw HubError(400, "field.invalid", "`lat` and `lon` go together") }
            if let c = fields["captured_at"], !c.isEmpty {
                guard (try? Date.ISO8601FormatStyle().parse(c)) != nil else {
                    throw HubError(400, "field.invalid", "`captured_at` must be an ISO 8601 timestamp")
                }
                capturedAt = c
            }
        }

        static func coordinate(_ text: String?, name: String, limit: Double) throws -> Double? {
            guard let text, !text.isEmpty else { return nil }
            guard let v = Double(text), v.isFinite, abs(v) <= limit else {
                throw HubError(400, "field.invalid", "`\(name)` must be a number within ±\(Int(limit))")
            }
            return v
        }
    }

    /// Stores a fully received multipart upload for `user`.
    public func accept(_ upload: ReceivedUpload, user: UserRecord) throws -> UploadOutcome {
        do {
            let meta = try Metadata(fields: upload.fields)
            let labelId = try resolve(meta, user: user)
            _ = try blobs.adopt(temporaryFile: upload.file, sha256: upload.sha256)
            return try record(sha256: upload.sha256, size: upload.size, labelId: labelId, meta: meta, user: user)
        } catch {
            try? FileManager.default.removeItem(at: upload.file)
            throw error
        }
    }

    /// Stores a local file (the CLI's bulk import) through the same checks as an HTTP upload.
    public func accept(fileAt path: URL, meta: Metadata, user: UserRecord) throws -> UploadOutcome {
        try accept(try Data(contentsOf: path), meta: meta, user: user)
    }

    /// Stores bytes held in memory (benchmarks, imports) through the same checks as an HTTP upload.
    public func accept(_ data: Data, meta: Metadata, user: UserRecord) throws -> UploadOutcome {
        try checkFormat(data)
        let labelId = try resolve(meta, user: user)
        let sha256 = try blobs.put(data)
        return try record(sha256: sha256, size: data.count, labelId: labelId, meta: meta, user: user)
    }

    /// Refuses bytes of a format outside the allow-list (415), from their first bytes.
    func checkFormat(_ data: Data) throws {
        do { _ = try verifier.checkFormat(leadingBytes: data.prefix(ImageFormat.sniffLength)) } catch let r as Rejection {
            throw HubError(415, r.code, r.message)
        }
    }

    /// A bulk import's group commit: every file is checked and its bytes written, then one sync makes all
    /// of them durable and one transaction records every image and job. Outcomes come in the order given;
    /// a file refused (format, label) is a failure of its own and does not stop the group. A crash before
    /// the transaction commits leaves blobs without rows, which a new import adopts (same bytes, same key).
    public func accept(group: [(data: Data, meta: Metadata)], user: UserRecord) throws -> [Result<UploadOutcome, HubError>] {
        var results = [Result<UploadOutcome, HubError>?](repeating: nil, count: group.count)
        var pending: [(index: Int, image: ImageRecord)] = []
        for (index, item) in group.enumerated() {
            do {
                try checkFormat(item.data)
                let labelId = try resolve(item.meta, user: user)
                let sha256 = try blobs.put(item.data, durable: false)
                pending.append((index, Self.newImage(sha256: sha256, size: item.data.count, labelId: labelId, meta: item.meta, user: user)))
            } catch let e as HubError {
                results[index] = .failure(e)
            }
        }
        if !pending.isEmpty {
            try blobs.syncAll()
            for (entry, outcome) in zip(pending, try catalog.recordUploads(pending.map(\.image))) {
                if case .success(.created) = outcome { Counter(label: "imagehub_uploads_total").increment() }
                results[entry.index] = outcome
            }
        }
        return results.map { $0! }
    }

    /// The id of the upload's label, once the label and the batch are known to exist.
    func resolve(_ meta: Metadata, user: UserRecord) throws -> Int64 {
        guard let labelId = try catalog.labelId(named: meta.label) else {
            throw HubError(422, "label.unknown", "label '\(meta.label)' does not exist")
        }
        if let batchId = meta.batch {
            guard let owner = try catalog.batchOwner(id: batchId), owner == user.id else {
                throw HubError(422, "batch.unknown", "batch '\(batchId)' does not exist or is not yours")
            }
        }
        return labelId
    }

    /// Commits the image and its pipeline job; the bytes are already durable in the blob store.
    private func record(sha256: String, size: Int, labelId: Int64, meta: Metadata, user: UserRecord) throws -> UploadOutcome {
        let outcome = try catalog.recordUpload(Self.newImage(sha256: sha256, size: size, labelId: labelId, meta: meta, user: user))
        if case .created = outcome { Counter(label: "imagehub_uploads_total").increment() }
        return outcome
    }

    /// The new image row of an upload whose bytes are stored.
    static func newImage(sha256: String, size: Int, labelId: Int64, meta: Metadata, user: UserRecord) -> ImageRecord {
        ImageRecord.newUpload(sha256: sha256, labelId: labelId, uploaderId: user.id!, batchId: meta.batch,
                              device: meta.device, lat: meta.lat, lon: meta.lon, capturedAt: meta.capturedAt, bytes: size)
    }
}
