import BlobStore
import Catalog
import Crypto
import Foundation
import HubCore
import Imaging
import Verify

/// tus 1.0.0 uploads (core, creation, creation-with-upload, termination, checksum, expiration): bytes
/// are appended to `DATA/uploads/ID` and fsynced before the durable offset moves in the catalog, so a
/// partial upload survives a restart and a client resumes from `HEAD`'s `Upload-Offset`. A finished
/// upload enters exactly the same path as a multipart upload (`Ingestor.accept(fileAt:)`).
public final class ResumableUploads: Sendable {
    public static let version = "1.0.0"
    public static let extensions = "creation,creation-with-upload,termination,checksum,expiration"
    public static let checksumAlgorithms = "sha1,sha256"

    let catalog: Catalog
    let ingestor: Ingestor
    let settings: HubSettings
    public let directory: URL

    public init(catalog: Catalog, ingestor: Ingestor, settings: HubSettings, directory: URL) throws {
        self.catalog = catalog
        self.ingestor = ingestor
        self.settings = settings
        self.directory = directory
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    func file(_ id: String) -> URL { directory.appendingPathComponent(id) }

    /// Decodes `Upload-Metadata` (`key base64,key base64`).
    public static func parseMetadata(_ header: String?) throws -> [String: String] {
        var out: [String: String] = [:]
        for pair in (header ?? "").split(separator: ",") {
            let parts = pair.trimmingCharacters(in: .whitespaces).split(separator: " ", maxSplits: 1)
            guard let key = parts.first.map(String.init), !key.isEmpty else { continue }
            if parts.count == 1 { out[key] = ""; continue }
            guard let data = Data(base64Encoded: String(parts[1])), let value = String(data: data, encoding: .utf8) else {
                throw HubError(400, "tus.bad_metadata", "Upload-Metadata value for '\(key)' is not base64 UTF-8")
            }
            out[key] = value
        }
        return out
    }

    /// Creates an upload of `length` bytes for `user`, after checking its size and metadata like a
    /// multipart upload's fields (label must exist).
    public func create(length: Int, metadataHeader: String?, user: UserRecord) throws -> ResumableUploadRecord {
        guard length >= 0 else { throw HubError(400, "tus.bad_length", "Upload-Length must be a non-negative integer") }
        guard length <= settings.maxUploadBytes else {
            throw HubError(413, "upload.too_large", "the upload is \(length) bytes; the limit is \(settings.maxUploadBytes)")
        }
        let fields = try Self.parseMetadata(metadataHeader)
        let meta = try Ingestor.Metadata(fields: fields)
        _ = try ingestor.resolve(meta, user: user)
        let now = Date()
        let upload = ResumableUploadRecord(
            id: UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: ""), userId: user.id!, length: length, offset: 0,
            metadata: String(decoding: try JSONEncoder().encode(fields), as: UTF8.self), rawMetadata: metadataHeader, imageId: nil,
            createdAt: now, expiresAt: now.addingTimeInterval(settings.uploadExpirySeconds))
        guard FileManager.default.createFile(atPath: file(upload.id).path, contents: nil) else {
            throw HubError(500, "internal.io", "cannot create the upload's file")
        }
        try catalog.createResumableUpload(upload)
        return upload
    }

    /// The upload, if `user` may see it and it has not expired.
    public func find(_ id: String, user: UserRecord) throws -> ResumableUploadRecord {
        guard let upload = try catalog.resumableUpload(id: id), upload.userId == user.id || user.role == .admin else {
            throw HubError(404, "tus.unknown_upload", "no upload \(id)")
        }
        guard upload.expiresAt > Date() || upload.imageId != nil else {
            throw HubError(410, "tus.expired", "upload \(id) expired at \(upload.expiresAt)")
        }
        return upload
    }

    /// One PATCH (or the body of a creation-with-upload): appends `body` at `offset`, which must be the
    /// upload's current offset. Bytes received before a cut connection are kept (unless a checksum was
    /// asked for), so the client resumes from there. Returns the upload as it now stands.
    public func append<Body: AsyncSequence>(_ id: String, offset: Int, checksum: String?, user: UserRecord, body: Body) async throws
        -> ResumableUploadRecord where Body.Element == [UInt8] {
        _ = try find(id, user: user)
        let handle = try FileHandle(forWritingTo: file(id))
        defer { try? handle.close() }
        // One writer at a time, whichever API node it is on: an exclusive lock on the file (flock; on NFS the
        // client turns it into a byte-range lock the server holds). The catalog is read again under it.
        guard flock(handle.fileDescriptor, LOCK_EX | LOCK_NB) == 0 else {
            throw HubError(409, "tus.busy", "another request is writing upload \(id)")
        }
        let upload = try find(id, user: user)
        guard upload.imageId == nil else { throw HubError(409, "tus.complete", "upload \(id) is already complete") }
        guard offset == upload.offset else {
            throw HubError(409, "tus.offset_mismatch", "Upload-Offset \(offset) does not match the upload's offset \(upload.offset)")
        }
        var hasher = try checksum.map(Checksum.init)
        // Whatever a crashed request wrote past the durable offset is not part of the upload.
        try handle.truncate(atOffset: UInt64(upload.offset))
        try handle.seek(toOffset: UInt64(upload.offset))
        var received = 0
        // A dropped connection is no error to report (nobody is listening): the bytes received are kept.
        // Only reading the body counts as a cut; failing to write it (a full disk) is the hub's error.
        var cut = false
        var chunks = body.makeAsyncIterator()
        while true {
            let next: [UInt8]?
            do { next = try await chunks.next() } catch { cut = true; break }
            guard let chunk = next else { break }
            guard upload.offset + received + chunk.count <= upload.length else {
                try handle.truncate(atOffset: UInt64(upload.offset))
                throw HubError(413, "tus.exceeds_length", "the body goes past Upload-Length \(upload.length)")
            }
            try handle.write(contentsOf: chunk)
            hasher?.update(chunk)
            received += chunk.count
        }
        if let hasher {
            guard !cut, hasher.matches else {
                try handle.truncate(atOffset: UInt64(upload.offset))
                if cut { throw HubError(400, "tus.incomplete", "the connection ended before the checksummed body did") }
                throw HubError(460, "tus.checksum_mismatch", "the body does not match Upload-Checksum")
            }
        }
        try handle.synchronize()
        let newOffset = upload.offset + received
        // The type is sniffed as soon as the first bytes are in: a disallowed file is refused at once.
        if upload.offset < ImageFormat.sniffLength, newOffset >= min(ImageFormat.sniffLength, upload.length), newOffset > 0 {
            let head = try FileHandle(forReadingFrom: file(id))
            let leading = try head.read(upToCount: ImageFormat.sniffLength) ?? Data()
            try? head.close()
            do { _ = try ingestor.verifier.checkFormat(leadingBytes: leading) } catch let r as Rejection {
                try terminate(id, user: user)
                throw HubError(415, r.code, r.message)
            }
        }
        guard try catalog.advanceResumableUpload(id: id, from: upload.offset, to: newOffset) else {
            throw HubError(409, "tus.offset_mismatch", "upload \(id) moved meanwhile")
        }
        var current = upload
        current.offset = newOffset
        if newOffset == upload.length {
            current.imageId = try complete(current, user: user)
        }
        return current
    }

    /// A finished upload becomes an image through the multipart path's checks and commit.
    func complete(_ upload: ResumableUploadRecord, user: UserRecord) throws -> String {
        let fields = try JSONDecoder().decode([String: String].self, from: Data(upload.metadata.utf8))
        let outcome = try ingestor.accept(fileAt: file(upload.id), meta: try Ingestor.Metadata(fields: fields), user: user)
        let image: ImageRecord
        switch outcome {
        case .created(let i), .existing(let i): image = i
        }
        try catalog.finishResumableUpload(id: upload.id, imageId: image.id)
        try? FileManager.default.removeItem(at: file(upload.id))
        return image.id
    }

    /// Termination: the upload and its bytes are gone.
    public func terminate(_ id: String, user: UserRecord) throws {
        _ = try find(id, user: user)
        try catalog.deleteResumableUpload(id: id)
        try? FileManager.default.removeItem(at: file(id))
    }

    /// Removes expired uploads and their files; returns how many.
    @discardableResult
    public func expire() throws -> Int {
        let expired = try catalog.expiredResumableUploads()
        for upload in expired {
            try catalog.deleteResumableUpload(id: upload.id)
            try? FileManager.default.removeItem(at: file(upload.id))
        }
        return expired.count
    }

    /// `Upload-Checksum: ALGORITHM BASE64`.
    struct Checksum {
        enum Kind { case sha1(Insecure.SHA1), sha256(SHA256) }
        var kind: Kind
        let expected: Data

        init(_ header: String) throws {
            let parts = header.split(separator: " ", maxSplits: 1).map(String.init)
            guard parts.count == 2, let expected = Data(base64Encoded: parts[1]) else {
                throw HubError(400, "tus.bad_checksum_header", "Upload-Checksum must be `ALGORITHM BASE64`")
            }
            switch parts[0].lowercased() {
            case "sha1": kind = .sha1(Insecure.SHA1())
            case "sha256": kind = .sha256(SHA256())
            default: throw HubError(400, "tus.unsupported_checksum", "checksum algorithm \(parts[0]) is not supported (sha1, sha256)")
            }
            self.expected = expected
        }

        mutating func update(_ bytes: [UInt8]) {
            switch kind {
            case .sha1(var h): h.update(data: bytes); kind = .sha1(h)
            case .sha256(var h): h.update(data: bytes); kind = .sha256(h)
            }
        }

        var matches: Bool {
            switch kind {
            case .sha1(let h): return Data(h.finalize()) == expected
            case .sha256(let h): return Data(h.finalize()) == expected
            }
        }
    }
}
