import Catalog
import Foundation
import Glibc
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import HubCore
import HubTesting
import Simulator
import Synchronization
import Testing

/// The real `imagehub` executable (built by `make test` before the tests run), as a child process.
final class HubProcess {
    static let binary = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent(".build/debug/imagehub")

    let child: ChildProcess
    var process: ChildProcess { child }
    /// The port the hub listens on, once its log has said so: it is started on port 0, so the system picks
    /// a free one (a random port could be taken, by another test's client among others).
    var port: Int? { child.listeningPort }

    /// Starts `imagehub serve` on `data` with `arguments` added (`--role`), on `port` (0: the system picks).
    init(data: URL, environment: [String: String], arguments: [String] = [], port: Int = 0) throws {
        child = try ChildProcess(Self.binary, ["serve", "--data", data.path, "--port", "\(port)"] + arguments, environment: environment)
    }

    /// Runs the CLI to its end; its exit status must be `status` (0 unless said), else this throws with the output.
    static func run(_ arguments: [String], environment: [String: String] = [:], status expected: Int32 = 0) async throws -> String {
        let (status, output) = try await runProgram(binary, arguments, environment: environment)
        let text = String(decoding: output, as: UTF8.self)
        guard status == expected else {
            throw HubError(500, "test.exit_status", "imagehub \(arguments.joined(separator: " ")) exited with \(status), expected \(expected): \(text.suffix(2000))")
        }
        return text
    }

    var base: String { "http://127.0.0.1:\(port ?? 0)" }

    func waitUntilHealthy() async throws {
        for _ in 0..<400 {
            if port != nil, let (_, r) = try? await URLSession.shared.data(from: URL(string: base + "/healthz")!),
               (r as? HTTPURLResponse)?.statusCode == 200 { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw HubError(500, "test.timeout", "the hub did not come up: \(child.logText.suffix(2000))")
    }

    func upload(_ bytes: Data, label: String, key: String) async throws -> (Int, [String: Any]) {
        try await Self.upload(bytes, to: base, label: label, key: key)
    }

    /// `POST /v1/images` on the node at `base`: the status and the body's JSON.
    static func upload(_ bytes: Data, to base: String, label: String, key: String) async throws -> (Int, [String: Any]) {
        let body = MultipartBody.upload(bytes, label: label)
        var request = URLRequest(url: URL(string: base + "/v1/images")!)
        request.httpMethod = "POST"
        request.setValue("Bearer \(key)", forHTTPHeaderField: "Authorization")
        request.setValue(body.contentType, forHTTPHeaderField: "Content-Type")
        let (data, response) = try await URLSession.shared.upload(for: request, from: body.closed())
        return ((response as! HTTPURLResponse).statusCode, (try JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:])
    }
}

/// Polls `condition` every 10 ms until it holds, or fails after `seconds`.
func waitUntil(seconds: Double, _ condition: () throws -> Bool) async throws {
    let deadline = ContinuousClock.now + .seconds(seconds)
    while try !condition() {
        guard ContinuousClock.now < deadline else { throw HubError(500, "test.timeout", "condition not met in \(seconds) s") }
        try await Task.sleep(for: .milliseconds(10))
    }
}

@Suite(.serialized) struct CrashRecoveryTests {
    @Test func killDashNineLosesNothingAndRestartFinishesEachImageOnce() async throws {
        #expect(FileManager.default.isExecutableFile(atPath: HubProcess.binary.path), "build the CLI first (make test does)")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("imagehub-crash-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let key = try await HubProcess.run(["keys", "create", "--role", "admin", "--data", dir.path])
            .split(separator: "\n").last.map(String.init) ?? ""
        #expect(key.hasPrefix("ihk_"))
        _ = try await HubProcess.run(["labels", "create", "Banana", "--data", dir.path])
        let env = ["IMAGEHUB_WORKERS_COUNT": "1", "IMAGEHUB_JOBS_LEASE_SECONDS": "1"]
        // Small uploads that take a worker long to decode.
        let images = try (0..<12).map { try Fixtures.flatPNG(width: 9000, height: 9000, value: UInt8(40 + $0 * 15)) }

        // An API-only node acknowledges every upload, then dies: acknowledged work is on disk.
        let api = try HubProcess(data: dir, environment: ["IMAGEHUB_WORKERS_COUNT": "0"])
        try await api.waitUntilHealthy()
        var acknowledged: [String] = []
        for bytes in images {
            let (status, json) = try await api.upload(bytes, label: "Banana", key: key)
            #expect(status == 202)
            if let id = json["id"] as? String { acknowledged.append(id) }
        }
        #expect(acknowledged.count == 12)
        api.process.kill9()
        #expect(api.process.waitUntilExit(timeout: 60), "the node ends")

        // A worker node is killed once processing is under way: some images decided, the rest pending,
        // one of them in the middle of its job.
        let catalog = try Catalog(path: dir.appendingPathComponent("catalog.sqlite").path)
        func pending() throws -> [String] { try acknowledged.filter { try catalog.image(id: $0)?.status == .pending } }
        #expect(try pending().count == 12)
        let first = try HubProcess(data: dir, environment: env)
        try await waitUntil(seconds: 60) { try pending().count < acknowledged.count }
        first.process.kill9()
        #expect(first.process.waitUntilExit(timeout: 60), "the node ends")
        let pendingAtCrash = try pending()
        #expect(!pendingAtCrash.isEmpty && pendingAtCrash.count < 12, "the kill must land while work is under way")

        let second = try HubProcess(data: dir, environment: env)
        try await second.waitUntilHealthy()
        try await waitUntil(seconds: 120) { try catalog.backlog() == 0 }
        for id in acknowledged {
            let image = try #require(try catalog.image(id: id))
            #expect(image.status.isFinal, "\(id) is \(image.status)")
            let jobs = try catalog.jobs(imageId: id)
            #expect(jobs.count == 1 && jobs[0].state == .done)
            #expect(image.canonicalKey != nil && image.thumbnailKey != nil && image.reasonCodes.first?.hasPrefix("quality.") == true)
        }
        // Graceful shutdown: SIGTERM drains and exits cleanly.
        second.process.terminate()
        #expect(second.process.waitUntilExit(timeout: 60), "the node ends")
        #expect(second.process.exitStatus != nil, "a SIGTERM drain ends with an exit, not a signal: \(second.process.logText.suffix(1500))")
    }

    @Test("SIGTERM while a client holds an upload open without finishing its body: the drain ends after server.drainSeconds, exit 0")
    func aStalledClientCannotHoldADrainForever() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("imagehub-drain-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let key = try await HubProcess.run(["keys", "create", "--role", "admin", "--data", dir.path])
            .split(separator: "\n").last.map(String.init) ?? ""
        let hub = try HubProcess(data: dir, environment: ["IMAGEHUB_SERVER_DRAIN_SECONDS": "2", "IMAGEHUB_EMBEDDING_ENABLED": "false"])
        try await hub.waitUntilHealthy()
        // A phone that announces a megabyte, sends a hundred bytes and then nothing, keeping its connection.
        let socket = try StalledClient(port: hub.port!)
        defer { socket.close() }
        try socket.send("POST /v1/images HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(key)\r\n"
                        + "Content-Type: multipart/form-data; boundary=x\r\nContent-Length: 1000000\r\n\r\n"
                        + "--x\r\nContent-Disposition: form-data; name=\"label\"\r\n\r\nBanana\r\n--x\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\n")
        try await Task.sleep(for: .milliseconds(300))
        let signalled = ContinuousClock.now
        hub.process.terminate()
        #expect(hub.process.waitUntilExit(timeout: 30), "the drain is cut short, not waited out")
        let took = (ContinuousClock.now - signalled).seconds
        #expect(took >= 1.5 && took < 15, "it waited for the request about server.drainSeconds (\(took) s)")
        #expect(hub.process.exitStatus == 0, "\(hub.process.logText.suffix(2000))")
    }
}

/// A TCP client that sends what it is told and otherwise keeps quiet.
final class StalledClient {
    let fd: Int32

    init(port: Int) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard fd >= 0, connected == 0 else { throw HubError(500, "test.connect", "cannot connect to port \(port)") }
    }

    func send(_ text: String) throws {
        let bytes = Array(text.utf8)
        guard Glibc.send(fd, bytes, bytes.count, 0) == bytes.count else { throw HubError(500, "test.send", "send failed") }
    }

    func close() { Glibc.close(fd) }
}
