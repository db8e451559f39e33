import Foundation
import HTTPTypes
import HubCore
import HubServer
import HubTesting
import Hummingbird
import HummingbirdTesting
import NIOCore
import Simulator
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

/// Runs `body` with the base URL of a live server that `makeApp` builds on a port the system picks
/// (port 0; the app reports the bound port through the callback it is given). A random fixed port could
/// collide with an ephemeral port that this process's own client connections hold.
func serving<App: ApplicationProtocol, T>(_ makeApp: (@escaping @Sendable (Int) async -> Void) -> App,
                                          _ body: (String) async throws -> T) async throws -> T {
    let (ports, listening) = AsyncStream.makeStream(of: Int.self)
    let app = makeApp { listening.yield($0) }
    let server = Task {
        defer { listening.finish() }
        try await app.runService()
    }
    let result: Result<T, any Error>
    var iterator = ports.makeAsyncIterator()
    if let port = await iterator.next() {
        do { result = .success(try await body("http://127.0.0.1:\(port)")) } catch { result = .failure(error) }
    } else {
        result = .failure(HubError(500, "test.server", "the server did not start: \(String(describing: await server.result))"))
    }
    server.cancel()
    _ = await server.result
    return try result.get()
}

extension TestHub {
    /// Runs `body` with the whole hub (HTTP API and workers) served on a real socket.
    func serving<T>(_ body: (String) async throws -> T) async throws -> T {
        try await HubTests.serving({ buildApplication(hub: hub, host: "127.0.0.1", port: 0, onListening: $0) }, body)
    }
}

/// Runs a program to completion off Swift's cooperative threads: a test blocked in `waitUntilExit` would
/// hold one of the few cooperative threads, and in-process servers of other tests could starve.
func runProgram(_ executable: URL, _ arguments: [String], environment: [String: String] = [:],
                mergeErrors: Bool = false) async throws -> (status: Int32, output: Data) {
    try await offload { try ChildProcess.run(executable, arguments, environment: environment, mergeErrors: mergeErrors) }
}
