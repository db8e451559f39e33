import Foundation
#if canImport(Glibc)
import Glibc
#endif
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

/// Waits until something accepts TCP connections on 127.0.0.1:`port` (a server started in a task).
func waitForPort(_ port: Int, seconds: Double = 30) async throws {
    let deadline = ContinuousClock.now + .seconds(seconds)
    while ContinuousClock.now < deadline {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        close(fd)
        if connected == 0 { return }
        try await Task.sleep(for: .milliseconds(50))
    }
    Issue.record("nothing listens on port \(port) after \(seconds) s")
}

/// Runs a program to completion off Swift's cooperative threads: a test blocked in `waitUntilExit` would
/// hold one of the few cooperative threads, and in-process servers of other tests could starve.
func runProgram(_ executable: URL, _ arguments: [String], environment: [String: String] = [:],
                mergeErrors: Bool = false) async throws -> (status: Int32, output: Data) {
    try await offload {
        let p = Process()
        p.executableURL = executable
        p.arguments = arguments
        p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let out = Pipe()
        p.standardOutput = out
        if mergeErrors { p.standardError = out }
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, data)
    }
}
