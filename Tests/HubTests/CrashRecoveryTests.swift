import Catalog
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import HubCore
import HubTesting
import Testing

/// The real `imagehub` executable (built by `make test` before the tests run), as a child process.
final class HubProcess {
    static let binary = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent(".build/debug/imagehub")

    let process = Process()
    let port: Int

    init(data: URL, environment: [String: String]) throws {
        port = Int.random(in: 20_000..<60_000)
        process.executableURL = Self.binary
        process.arguments = ["serve", "--data", data.path, "--port", String(port)]
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
    }

    static func run(_ arguments: [String]) throws -> String {
        let p = Process()
        p.executableURL = binary
        p.arguments = arguments
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }

    var base: String { "http://127.0.0.1:\(port)" }

    func waitUntilHealthy() async throws {
        for _ in 0..<200 {
            if let (_, r) = try? await URLSession.shared.data(from: URL(string: base + "/healthz")!), (r as? HTTPURLResponse)?.statusCode == 200 { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw HubError(500, "test.timeout", "the hub did not come up")
    }

    func upload(_ bytes: Data, label: String, key: String) async throws -> (Int, [String: Any]) {
        let body = MultipartBody.upload(bytes, label: label)
        var request = URLRequest(url: URL(string: base + "/v1/images")!)
        request.httpMethod = "POST"
        request.setValue("Bearer \(key)", forHTTPHeaderField: "Authorization")
        request.setValue(body.contentType, forHTTPHeaderField: "Content-Type")
        let (data, response) = try await URLSession.shared.upload(for: request, from: body.closed())
        return ((response as! HTTPURLResponse).statusCode, (try JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:])
    }
}

@Suite(.serialized) struct CrashRecoveryTests {
    @Test func killDashNineLosesNothingAndRestartFinishesEachImageOnce() async throws {
        #expect(FileManager.default.isExecutableFile(atPath: HubProcess.binary.path), "build the CLI first (make test does)")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("imagehub-crash-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let key = try HubProcess.run(["keys", "create", "--role", "admin", "--data", dir.path])
            .split(separator: "\n").last.map(String.init) ?? ""
        #expect(key.hasPrefix("ihk_"))
        _ = try HubProcess.run(["labels", "create", "Banana", "--data", dir.path])
        let env = ["IMAGEHUB_WORKERS_COUNT": "1", "IMAGEHUB_JOBS_LEASE_SECONDS": "1"]

        // Small uploads that take a worker long to decode, so the kill lands while most are pending.
        let images = try (0..<16).map { try Fixtures.flatPNG(width: 6000, height: 4500, value: UInt8(40 + $0 * 10)) }
        let first = try HubProcess(data: dir, environment: env)
        try await first.waitUntilHealthy()
        var acknowledged: [String] = []
        for bytes in images {
            let (status, json) = try await first.upload(bytes, label: "Banana", key: key)
            #expect(status == 202)
            if let id = json["id"] as? String { acknowledged.append(id) }
        }
        kill(first.process.processIdentifier, SIGKILL)
        first.process.waitUntilExit()

        let catalog = try Catalog(path: dir.appendingPathComponent("catalog.sqlite").path)
        let pendingAtCrash = try acknowledged.filter { try catalog.image(id: $0)?.status == .pending }
        #expect(acknowledged.count == 16)
        #expect(!pendingAtCrash.isEmpty, "the kill must land while work is pending")

        let second = try HubProcess(data: dir, environment: env)
        try await second.waitUntilHealthy()
        for _ in 0..<600 where try catalog.backlog() > 0 { try await Task.sleep(for: .milliseconds(100)) }
        for id in acknowledged {
            let image = try #require(try catalog.image(id: id))
            #expect(image.status.isFinal, "\(id) is \(image.status)")
            let jobs = try catalog.jobs(imageId: id)
            #expect(jobs.count == 1 && jobs[0].state == .done)
            #expect(image.canonicalKey != nil && image.thumbnailKey != nil && image.reasonCodes.first?.hasPrefix("quality.") == true)
        }
        // Graceful shutdown: SIGTERM drains and exits cleanly.
        second.process.terminate()
        second.process.waitUntilExit()
        #expect(second.process.terminationReason == .exit)
    }
}
