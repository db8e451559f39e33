import Catalog
import Foundation
import HTTPTypes
import HubCore
import Hummingbird
import Ingest

enum TusHeader {
    static let resumable = HTTPField.Name("Tus-Resumable")!
    static let version = HTTPField.Name("Tus-Version")!
    static let extensions = HTTPField.Name("Tus-Extension")!
    static let maxSize = HTTPField.Name("Tus-Max-Size")!
    static let checksumAlgorithm = HTTPField.Name("Tus-Checksum-Algorithm")!
    static let uploadOffset = HTTPField.Name("Upload-Offset")!
    static let uploadLength = HTTPField.Name("Upload-Length")!
    static let uploadMetadata = HTTPField.Name("Upload-Metadata")!
    static let uploadChecksum = HTTPField.Name("Upload-Checksum")!
    static let uploadExpires = HTTPField.Name("Upload-Expires")!
    static let uploadDeferLength = HTTPField.Name("Upload-Defer-Length")!
    static let imageId = HTTPField.Name("Upload-Image-Id")!

    static func httpDate(_ date: Date) -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "GMT")
        f.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        return f.string(from: date)
    }
}

extension HubRoutes {
    /// tus 1.0.0 under `/v1/uploads/` (see `ResumableUploads`).
    func addResumableUploadRoutes(to router: RouteRecorder) {
        router.options("/v1/uploads") { _, _ in
            var headers = HTTPFields()
            headers[TusHeader.resumable] = ResumableUploads.version
            headers[TusHeader.version] = ResumableUploads.version
            headers[TusHeader.extensions] = ResumableUploads.extensions
            headers[TusHeader.maxSize] = "\(hub.settings.maxUploadBytes)"
            headers[TusHeader.checksumAlgorithm] = ResumableUploads.checksumAlgorithms
            return Response(status: .noContent, headers: headers)
        }
        router.post("/v1/uploads") { request, context in
            let user = try context.require(.supplier)
            try Self.checkTusVersion(request)
            guard request.headers[TusHeader.uploadDeferLength] == nil else {
                throw HubError(400, "tus.defer_length_unsupported", "send Upload-Length (creation-defer-length is not supported)")
            }
            guard let length = request.headers[TusHeader.uploadLength].flatMap(Int.init) else {
                throw HubError(400, "tus.bad_length", "Upload-Length is required")
            }
            try await admitUpload()
            let store = hub.uploads
            let metadata = request.headers[TusHeader.uploadMetadata]
            var upload = try await offload { try store.create(length: length, metadataHeader: metadata, user: user) }
            // creation-with-upload: the first bytes may come with the creation request.
            if request.headers[.contentType]?.hasPrefix("application/offset+octet-stream") == true {
                upload = try await store.append(upload.id, offset: 0, checksum: request.headers[TusHeader.uploadChecksum], user: user,
                                                body: request.body.map { Array($0.readableBytesView) })
            }
            var headers = Self.uploadHeaders(upload)
            headers[.location] = "/v1/uploads/\(upload.id)"
            if var answer = try await verdictOnCompletion(upload, request) {
                answer.headers[.location] = "/v1/uploads/\(upload.id)"
                return answer
            }
            return Response(status: .created, headers: headers)
        }
        router.head("/v1/uploads/:id") { request, context in
            let user = try context.require(.supplier)
            try Self.checkTusVersion(request)
            let id = try context.parameters.require("id")
            let store = hub.uploads
            let upload = try await offload { try store.find(id, user: user) }
            var headers = Self.uploadHeaders(upload)
            headers[TusHeader.uploadLength] = "\(upload.length)"
            headers[.cacheControl] = "no-store"
            if let raw = upload.rawMetadata { headers[TusHeader.uploadMetadata] = raw }
            return Response(status: .ok, headers: headers)
        }
        router.patch("/v1/uploads/:id") { request, context in
            let user = try context.require(.supplier)
            try Self.checkTusVersion(request)
            guard request.headers[.contentType]?.hasPrefix("application/offset+octet-stream") == true else {
                throw HubError(415, "tus.bad_content_type", "PATCH bodies are application/offset+octet-stream")
            }
            guard let offset = request.headers[TusHeader.uploadOffset].flatMap(Self.offset) else {
                throw HubError(400, "tus.bad_offset", "Upload-Offset is required: a whole number of bytes")
            }
            let id = try context.parameters.require("id")
            let upload = try await hub.uploads.append(id, offset: offset, checksum: request.headers[TusHeader.uploadChecksum], user: user,
                                                      body: request.body.map { Array($0.readableBytesView) })
            if let answer = try await verdictOnCompletion(upload, request) { return answer }
            return Response(status: .noContent, headers: Self.uploadHeaders(upload))
        }
        router.delete("/v1/uploads/:id") { request, context in
            let user = try context.require(.supplier)
            try Self.checkTusVersion(request)
            let id = try context.parameters.require("id")
            let store = hub.uploads
            try await offload { try store.terminate(id, user: user) }
            return Response(status: .noContent, headers: [TusHeader.resumable: ResumableUploads.version])
        }
    }

    /// For the request that completed an upload with `Prefer: wait=N`: 200 with the image's verdict and the
    /// upload's tus headers once the image is final within N seconds; nil otherwise (the usual answer).
    func verdictOnCompletion(_ upload: ResumableUploadRecord, _ request: Request) async throws -> Response? {
        guard let imageId = upload.imageId, let wait = Self.preferredWait(request),
              var answer = try await verdict(of: imageId, within: wait) else { return nil }
        for field in Self.uploadHeaders(upload) { answer.headers.append(field) }
        return answer.with(wait: wait)
    }

    /// An `Upload-Offset` value: digits only. One too large for any upload is kept as `Int.max`, so that it
    /// is answered as any other offset that does not match (409, or 404 for an unknown upload), not as a
    /// malformed header.
    static func offset(_ text: String) -> Int? {
        guard !text.isEmpty, text.utf8.allSatisfy({ (0x30...0x39).contains($0) }) else { return nil }
        return Int(text) ?? Int.max
    }

    static func checkTusVersion(_ request: Request) throws {
        guard request.headers[TusHeader.resumable] == ResumableUploads.version else {
            throw HubError(412, "tus.version", "send Tus-Resumable: \(ResumableUploads.version)", details: ["tus_version": ResumableUploads.version])
        }
    }

    static func uploadHeaders(_ upload: ResumableUploadRecord) -> HTTPFields {
        var headers = HTTPFields()
        headers[TusHeader.resumable] = ResumableUploads.version
        headers[TusHeader.uploadOffset] = "\(upload.offset)"
        headers[TusHeader.uploadExpires] = TusHeader.httpDate(upload.expiresAt)
        if let image = upload.imageId { headers[TusHeader.imageId] = image }
        return headers
    }
}
