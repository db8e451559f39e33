import Foundation
import HTTPTypes
import HubCore
import HubServer
import HubTesting
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

/// Skips a test when the real photos are absent, saying why.
let needsSharedData = Testing.ConditionTrait.enabled(if: SharedData.available, Comment(rawValue: SharedData.skipReason))

extension TestHub {
    /// Runs `body` against the hub's router (no sockets).
    func withClient(_ body: @escaping @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        let app = Application(router: buildRouter(hub: hub))
        try await app.test(.router) { client in try await body(client) }
    }
}

extension TestClientProtocol {
    /// `POST /v1/images` with a multipart body.
    func upload(_ bytes: Data, label: String, as bearer: String, fields: [String: String] = [:], filename: String = "photo.jpg") async throws -> TestResponse {
        let body = MultipartBody.upload(bytes, label: label, fields: fields, filename: filename)
        return try await execute(uri: "/v1/images", method: .post,
                                 headers: [.authorization: bearer, .contentType: body.contentType],
                                 body: ByteBuffer(bytes: body.closed()))
    }

    func get(_ uri: String, as bearer: String?) async throws -> TestResponse {
        var headers = HTTPFields()
        if let bearer { headers[.authorization] = bearer }
        return try await execute(uri: uri, method: .get, headers: headers)
    }

    func postJSON(_ uri: String, _ json: String, as bearer: String) async throws -> TestResponse {
        try await execute(uri: uri, method: .post, headers: [.authorization: bearer, .contentType: "application/json"],
                          body: ByteBuffer(string: json))
    }
}

extension TestResponse {
    /// The body as a JSON object.
    var json: [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(body.readableBytesView))) as? [String: Any] ?? [:]
    }

    /// `error.code` of an error body.
    var errorCode: String? { (json["error"] as? [String: Any])?["code"] as? String }

    var bytes: Data { Data(body.readableBytesView) }
}
