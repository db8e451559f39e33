import Synchronization
import Foundation
import HTTPTypes
import HubCore
import Ingest
import Hummingbird
import Metrics
import NIOCore
import NIOHTTP1

enum JSON {
    static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.keyEncodingStrategy = .convertToSnakeCase
        e.dateEncodingStrategy = .iso8601
        e.outputFormatting = [.sortedKeys]
        return e
    }()

    static let decoder: JSONDecoder = {
        let d = JSONDecoder()
        d.keyDecodingStrategy = .convertFromSnakeCase
        return d
    }()

    /// A JSON response with `status`.
    static func response<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok) throws -> Response {
        let data = try encoder.encode(value)
        return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// Decodes a small JSON request body, refusing bad JSON with `request.invalid_json`.
    /// The request's JSON body as `T`; with `emptyIsObject`, no body at all reads as `{}` (an optional body).
    static func decode<T: Decodable>(_ type: T.Type, from request: Request, context: HubContext, emptyIsObject: Bool = false) async throws -> T {
        let buffer = try await request.body.collect(upTo: context.maxUploadSize)
        let data = buffer.readableBytes == 0 && emptyIsObject ? Data("{}".utf8) : Data(buffer.readableBytesView)
        do { return try decoder.decode(T.self, from: data) } catch {
            throw HubError(400, "request.invalid_json", "the body is not the expected JSON: \(error)")
        }
    }
}

/// Turns every error into `{"error":{"code","message",...}}` with the right status; nothing escapes as a 500 page.
struct ErrorMiddleware: RouterMiddleware {
    typealias Context = HubContext
    /// The routes the router serves, to tell a path served with other methods (405 + `Allow`) from an
    /// unknown one (404).
    var routes = KnownRoutes()

    func handle(_ request: Request, context: HubContext, next: (Request, HubContext) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let e as HubError {
            var response = Self.response(status: e.status, code: e.code, message: e.message, details: e.details)
            if e.status == 503, let retry = e.details["retry_after"] { response.headers[.retryAfter] = retry }
            if request.uri.path.hasPrefix("/v1/uploads") { response.headers[TusHeader.resumable] = ResumableUploads.version }
            return response
        } catch let e as HTTPParserError where e == .invalidEOFState {
            // The client's connection dropped mid-body (a phone losing its network): routine, not a fault.
            // Whatever was stored of a tus upload is kept; a multipart upload's temporary file is gone.
            Counter(label: "imagehub_requests_cut_total").increment()
            context.logger.info("request body cut off: the client disconnected")
            return Self.response(status: 400, code: "request.incomplete", message: "the request body ended early", details: [:])
        } catch let e as HTTPError where e.status == .notFound && !routes.methods(for: request.uri.path).isEmpty {
            let allowed = routes.methods(for: request.uri.path)
            var response = Self.response(status: 405, code: "method.not_allowed",
                                         message: "\(request.method.rawValue) is not served here; allowed: \(allowed.joined(separator: ", "))", details: [:])
            response.headers[.allow] = allowed.joined(separator: ", ")
            return response
        } catch let e as HTTPError {
            let code = e.status == .notFound ? "route.not_found" : e.status == .contentTooLarge ? "upload.too_large" : "request.invalid"
            return Self.response(status: Int(e.status.code), code: code, message: e.body ?? e.status.reasonPhrase, details: [:])
        } catch {
            context.logger.error("unhandled error: \(error)")
            return Self.response(status: 500, code: "internal.error", message: "internal error", details: [:])
        }
    }

    static func response(status: Int, code: String, message: String, details: [String: String]) -> Response {
        var error: [String: String] = details
        error["code"] = code
        error["message"] = message
        let data = (try? JSON.encoder.encode(["error": error])) ?? Data()
        return Response(status: .init(code: status), headers: [.contentType: "application/json"],
                        body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}

/// The (method, path) pairs a router serves, `:name` segments matching any one segment.
final class KnownRoutes: Sendable {
    private let routes = Mutex<[(method: String, segments: [String])]>([])

    func add(_ method: String, _ path: String) {
        routes.withLock { $0.append((method.uppercased(), path.split(separator: "/").map(String.init))) }
    }

    /// The methods served for `path` (empty when no route has its shape).
    func methods(for path: String) -> [String] {
        let parts = path.split(separator: "/").map(String.init)
        let found = routes.withLock { routes in
            routes.filter { route in
                route.segments.count == parts.count && zip(route.segments, parts).allSatisfy { $0.hasPrefix(":") || $0 == $1 }
            }.map(\.method)
        }
        return Array(Set(found)).sorted()
    }
}

/// Query parameters read strictly: a value the OpenAPI document does not allow is a 400, never clamped or
/// taken for the default.
enum Query {
    static func integer(_ text: String?, name: String, default value: Int, in range: ClosedRange<Int>) throws -> Int {
        guard let text else { return value }
        guard let n = Int(text), range.contains(n) else {
            throw HubError(400, "field.invalid", "`\(name)` must be an integer from \(range.lowerBound) to \(range.upperBound)")
        }
        return n
    }

    static func boolean(_ text: String?, name: String) throws -> Bool {
        switch text {
        case nil, "false": return false
        case "true": return true
        default: throw HubError(400, "field.invalid", "`\(name)` must be true or false")
        }
    }
}
