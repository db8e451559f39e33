import AsyncHTTPClient
import ArgumentParser
import Catalog
import Foundation
import HubCore

struct DashboardBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dashboard",
        abstract: "The dashboard's page weight and server time per page on a hub with many images.",
        discussion: """
            Fills a fresh data directory's catalog with --images accepted images under one label (rows only: the \
            page weight counts HTML, CSS and script, not pictures) and 100 under another, starts `imagehub serve` \
            on it, signs in, and asks every page --requests times over loopback: bytes of HTML, HTML + CSS + \
            script (the goal: at most 200 KB before images), and the median and 95th percentile time to the last byte.
            """)

    @Option(help: "Images under the large label.") var images = 10_000
    @Option(help: "Requests per page.") var requests = 30

    func run() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("imagehub-bench-dashboard-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        // The catalog is filled before the hub starts, straight through the catalog.
        let token: String, sample: String, middle: String
        do {
            let catalog = try Catalog.open(dataDirectory: dir, url: nil)
            defer { catalog.close() }
            let admin = try catalog.createUser(name: "bench", role: .admin).user
            let fruit = try catalog.createLabel(name: "Fruit")
            let large = try catalog.createLabel(name: "Large", parent: fruit.name).id!
            let small = try catalog.createLabel(name: "Small", parent: fruit.name).id!
            let vector = Data(count: 2560)
            for start in stride(from: 0, to: images, by: 1000) {
                try catalog.insertSyntheticEmbeddedImages(labelId: large, uploaderId: admin.id!, model: "bench/0",
                                                          vectors: Array(repeating: vector, count: min(1000, images - start)))
            }
            try catalog.insertSyntheticEmbeddedImages(labelId: small, uploaderId: admin.id!, model: "bench/0", vectors: Array(repeating: vector, count: 100))
            let all = try catalog.images(labelIds: [large], status: .accepted, after: nil, limit: images)
            sample = all.first!.id
            middle = all[all.count / 2].id
            token = try catalog.createSession(for: admin, lifetime: 3600).token
        }
        let node = try ChildProcess(ChildProcess.imagehub, ["serve", "--data", dir.path, "--port", "0"],
                                    environment: ["IMAGEHUB_EMBEDDING_ENABLED": "false"])
        defer { node.stop() }
        try await node.waitUntilListening()
        let base = "http://127.0.0.1:\(node.listeningPort ?? 0)"
        // AsyncHTTPClient, as the simulator uses (URLSession would link FoundationNetworking, and with it
        // libcurl and some twenty libraries every start of the binary has to load).
        func fetch(_ path: String) async throws -> (bytes: Int, seconds: Double) {
            var request = HTTPClientRequest(url: base + path)
            request.headers.add(name: "Cookie", value: "imagehub_session=\(token)")
            let start = ContinuousClock.now
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
            let body = try await response.body.collect(upTo: 64 << 20)
            let seconds = (ContinuousClock.now - start).seconds
            guard response.status.code == 200 else { throw ValidationError("\(path) answered \(response.status.code)") }
            return (body.readableBytes, seconds)
        }
        let assets = try await fetch("/assets/app.css").bytes + (try await fetch("/assets/app.js").bytes)
        let pages = ["/", "/labels", "/labels/Small", "/labels/Large", "/labels/Large?status=all&after=\(middle)", "/images/\(sample)",
                     "/review", "/upload", "/batches", "/training", "/models"]
        var rows: [[String]] = []
        for path in pages {
            var times: [Double] = [], bytes = 0
            for _ in 0..<requests {
                let (n, seconds) = try await fetch(path)
                bytes = n
                times.append(seconds * 1000)
            }
            times.sort()
            rows.append([path.count > 40 ? String(path.prefix(37)) + "…" : path, "\(bytes)", String(format: "%.1f", Double(bytes + assets) / 1024),
                         String(format: "%.1f", times[times.count / 2]), String(format: "%.1f", times[min(times.count - 1, times.count * 95 / 100)])])
        }
        print("bench dashboard: \(images) images under one label, 100 under another, \(requests) requests a page, "
              + "CSS + script \(assets) bytes, \(ProcessInfo.processInfo.activeProcessorCount) cores")
        print(Table(headers: ["page", "HTML bytes", "HTML + CSS + JS KB", "median ms", "p95 ms"], rows: rows).text)
    }
}
