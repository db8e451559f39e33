import Catalog
import Foundation
import HTTPTypes
import HubCore
import Hummingbird
import Ingest
import NIOCore

extension HubRoutes {
    func addImageRoutes(to router: RouteRecorder) {
        router.post("/v1/images") { request, context in try await upload(request, context) }
        router.get("/v1/images") { request, context in try await statuses(request, context) }
        router.get("/v1/images/:id") { _, context in
            let image = try await visibleImage(context)
            let names = try await offload { try hub.catalog.labelsById() }
            return try JSON.response(ImageView(image, label: names[image.labelId]?.name ?? "?", labelName: { names[$0]?.name }))
        }
        router.get("/v1/images/:id/similar") { request, context in
            let k = try Query.integer(request.uri.queryParameters.get("k").map { String($0) }, name: "k", default: 10, in: 1...100)
            let image = try await visibleImage(context)
            let stage = try embedStage()
            let (found, names) = try await offload { (try stage.similar(to: image.id, k: k), try hub.catalog.labelsById()) }
            guard let found else {
                throw HubError(409, "image.not_embedded", "image \(image.id) has no embedding (status \(image.status.rawValue))")
            }
            struct Similar: Encodable { var id: String; var label: String; var similarity: Float }
            struct Page: Encodable { var image: String; var model: String; var similar: [Similar] }
            return try JSON.response(Page(image: image.id, model: stage.backbone.id, similar: found.map {
                Similar(id: $0.imageId, label: names[$0.labelId]?.name ?? "?", similarity: $0.similarity)
            }))
        }
        router.get("/v1/images/:id/canonical") { request, context in
            try await rendition(request, context) { $0.canonicalKey }
        }
        router.get("/v1/images/:id/thumbnail") { request, context in
            try await rendition(request, context) { $0.thumbnailKey }
        }
        router.get("/v1/images/:id/original") { request, context in
            _ = try context.require(.admin)
            return try await rendition(request, context, contentType: nil) { $0.sha256 }
        }
        router.post("/v1/images/:id/review") { request, context in
            _ = try context.require(.admin)
            struct Review: Decodable { var decision: String; var reason: String?; var label: String? }
            let review = try await JSON.decode(Review.self, from: request, context: context)
            let id = try context.parameters.require("id")
            let image: ImageRecord
            switch review.decision {
            case "accept", "reject":
                image = try await offload { try hub.catalog.review(imageId: id, accept: review.decision == "accept", reason: review.reason) }
            case "relabel":
                guard let name = review.label, !name.isEmpty else {
                    throw HubError(400, "field.missing", "a relabel names the `label` the image shows")
                }
                guard let labelId = try await offload({ try hub.catalog.labelId(named: name) }) else {
                    throw HubError(422, "label.unknown", "label '\(name)' does not exist")
                }
                image = try await offload { try hub.catalog.relabel(imageId: id, to: labelId) }
            default:
                throw HubError(400, "field.invalid", "`decision` must be accept, reject or relabel")
            }
            return try JSON.response(ImageView(image, label: try labelName(image.labelId)))
        }
    }

    /// `POST /v1/images`: streams the multipart body to disk, then commits the image and its job.
    func upload(_ request: Request, _ context: HubContext) async throws -> Response {
        let user = try context.require(.supplier)
        try await admitUpload()
        let cap = hub.settings.maxUploadBytes
        if let length = request.headers[.contentLength].flatMap(Int.init), length > cap + 64 * 1024 {
            throw HubError(413, "upload.too_large", "the upload is \(length) bytes; the limit is \(cap)")
        }
        let upload = try MultipartUpload(contentType: request.headers[.contentType], verifier: hub.ingestor.verifier,
                                         blobs: hub.blobs, maxBytes: cap)
        for try await buffer in request.body { try upload.consume(buffer) }
        let box = UncheckedBox(upload)
        let outcome = try await offload { try hub.ingestor.accept(try box.value.finish(), user: user) }
        switch outcome {
        case .created(let image):
            if let wait = Self.preferredWait(request), let final = try await verdict(of: image.id, within: wait) {
                return final.with(wait: wait)
            }
            struct Ack: Encodable { var id: String; var status: String; var sha256: String }
            return try JSON.response(Ack(id: image.id, status: image.status.rawValue, sha256: image.sha256), status: .accepted)
        case .existing(let image):
            return try JSON.response(ImageView(image, label: try labelName(image.labelId)))
        }
    }

    /// The longest wait a request may ask for with `Prefer: wait=N` (RFC 7240), in seconds.
    static let longestWait = 30

    /// The seconds `Prefer: wait=N` asks to wait (at most `longestWait`), or nil without such a preference.
    static func preferredWait(_ request: Request) -> Int? {
        for value in request.headers[values: HTTPField.Name("Prefer")!] {
            for preference in value.split(separator: ",") {
                let parts = preference.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                if parts.count == 2, parts[0].lowercased() == "wait", let seconds = Int(parts[1].trimmingCharacters(in: CharacterSet(charactersIn: "\""))), seconds >= 0 {
                    return min(seconds, longestWait)
                }
            }
        }
        return nil
    }

    /// Waits, holding no thread, until image `id` has its verdict or `seconds` pass: the image as stored, as
    /// `GET /v1/images/{id}` shows it, once final; nil when the time ran out first.
    func verdict(of id: String, within seconds: Int) async throws -> Response? {
        let deadline = ContinuousClock.now + .seconds(seconds)
        while true {
            if let image = try await offload({ try hub.catalog.image(id: id) }), image.status.isFinal {
                return try JSON.response(ImageView(image, label: try labelName(image.labelId)))
            }
            let left = deadline - ContinuousClock.now
            guard left > .zero else { return nil }
            // This process's workers wake the waiter as the verdict commits; another node's verdict is seen
            // at the next look.
            await hub.workers.verdicts.pause(for: id, upTo: min(left, .milliseconds(250)))
        }
    }

    /// `GET /v1/images?ids=a,b,…`: where up to `maxStatusIds` images stand, for a phone (or the simulator)
    /// following its uploads with one request instead of one per image. Ids the caller may not see, or
    /// that do not exist, are left out.
    func statuses(_ request: Request, _ context: HubContext) async throws -> Response {
        let user = try context.require(.supplier, .requester, .trainer)
        // `+` is a space in a query string (form encoding), as clients send it.
        let ids = (request.uri.queryParameters.get("ids") ?? "").replacingOccurrences(of: "+", with: " ").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        // Image ids are letters, digits and dashes: anything else is not an id (and not a blank).
        let shaped = ids.allSatisfy { id in id.unicodeScalars.allSatisfy { $0.isASCII && (CharacterSet.alphanumerics.contains($0) || $0 == "-") } }
        guard !ids.isEmpty, shaped, ids.count <= Self.maxStatusIds else {
            throw HubError(400, "field.invalid", "`ids` must list 1–\(Self.maxStatusIds) comma-separated image ids")
        }
        let found = try await offload { try hub.catalog.images(ids: Array(Set(ids))) }
        struct Status: Encodable { var id: String; var status: String; var reasons: [String]; var updatedAt: Date }
        let visible = found.filter { user.mayRead(ownedBy: $0.uploaderId) }.sorted { $0.id < $1.id }
        return try JSON.response(["images": visible.map { Status(id: $0.id, status: $0.status.rawValue, reasons: $0.reasonCodes, updatedAt: $0.updatedAt) }])
    }

    /// Most ids one `GET /v1/images?ids=` may ask about.
    static let maxStatusIds = 200

    /// The image named in the path, if the caller may see it (suppliers see their own only).
    func visibleImage(_ context: HubContext) async throws -> ImageRecord {
        let user = try context.require(.supplier, .requester, .trainer)
        let id = try context.parameters.require("id")
        guard let image = try await offload({ try hub.catalog.image(id: id) }),
              user.mayRead(ownedBy: image.uploaderId) else {
            throw HubError(404, "image.unknown", "no image \(id)")
        }
        return image
    }

    func rendition(_ request: Request, _ context: HubContext, contentType: String? = "image/jpeg",
                   key: @escaping @Sendable (ImageRecord) -> String?) async throws -> Response {
        let image = try await visibleImage(context)
        guard let blobKey = key(image) else {
            if image.status == .pending { throw HubError(409, "image.pending", "image \(image.id) is still being processed") }
            throw HubError(404, "image.no_rendition", "image \(image.id) was \(image.status.rawValue) and has no such rendition")
        }
        let etag = "\"\(blobKey)\""
        if request.headers[.ifNoneMatch] == etag {
            return Response(status: .notModified, headers: [.eTag: etag])
        }
        let data = try await offload { try hub.blobs.read(blobKey) }
        let type = contentType ?? "image/\(image.format ?? "octet-stream")"
        return Response(status: .ok, headers: [.contentType: type, .eTag: etag, .cacheControl: "private, max-age=31536000, immutable"],
                        body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}

/// Hands a non-Sendable value to a blocking thread that uses it alone.
struct UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

extension Response {
    /// The answer to a request whose `Prefer: wait=N` was honoured: `Preference-Applied: wait=N`.
    func with(wait seconds: Int) -> Response {
        var response = self
        response.headers[HTTPField.Name("Preference-Applied")!] = "wait=\(seconds)"
        return response
    }
}
