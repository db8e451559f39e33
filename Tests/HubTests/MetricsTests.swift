import Foundation
import FoundationNetworking
import HummingbirdTesting
import HubCore
import HubServer
import HubTesting
import Testing

/// `/metrics` checked by value: the registry is the process's, so each test reads every series before and
/// after what it does and checks the differences (tests run one at a time).
@Suite("Metrics by value", .serialized)
struct MetricsTests {
    /// Every sample of a Prometheus text page, by series (labels sorted, so their order does not matter).
    static func samples(_ text: String) -> [String: Double] {
        var out: [String: Double] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
            let series = line[..<space]
            if let open = series.firstIndex(of: "{"), series.hasSuffix("}") {
                let labels = series[series.index(after: open)..<series.index(before: series.endIndex)].split(separator: ",").map(String.init).sorted()
                out["\(series[..<open]){\(labels.joined(separator: ","))}"] = value
            } else {
                out[String(series)] = value
            }
        }
        return out
    }

    static func read(_ client: any TestClientProtocol, _ t: TestHub) async throws -> [String: Double] {
        samples(String(decoding: try await client.get("/metrics", as: t.bearer(.requester)).bytes, as: UTF8.self))
    }

    @Test("uploads, outcomes by reason, processing latency, images by status, backlog and backpressure move by what happened")
    func countsByValue() async throws {
        let t = try TestHub(labels: ["Banana"]) { $0.backlogHighWater = 2 }
        defer { t.remove() }
        try await t.withClient { client in
            let before = try await Self.read(client, t)
            func delta(_ series: String, _ after: [String: Double]) -> Double { (after[series] ?? 0) - (before[series] ?? 0) }
            _ = try await client.upload(try Fixtures.image(seed: 8201), label: "Banana", as: t.bearer(.supplier))
            _ = try await client.upload(try Fixtures.pngDeclaring(width: 30_000, height: 30_000), label: "Banana", as: t.bearer(.supplier))
            // Two wait for processing: the high-water mark (2) is reached, the third is pushed back.
            let pushed = try await client.upload(try Fixtures.image(seed: 8202), label: "Banana", as: t.bearer(.supplier))
            #expect(pushed.status.code == 503 && pushed.errorCode == "backpressure.busy")
            let waiting = try await Self.read(client, t)
            #expect(waiting["imagehub_backlog"] == 2)
            #expect(delta("imagehub_backpressure_total", waiting) == 1)
            await t.drain()
            let after = try await Self.read(client, t)
            #expect(delta("imagehub_uploads_total", after) == 2, "a refused upload is not counted")
            #expect(delta("imagehub_outcomes_total{reason=\"ok\",status=\"accepted\"}", after) == 1, "\(after.filter { $0.key.hasPrefix("imagehub_outcomes") })")
            #expect(delta("imagehub_outcomes_total{reason=\"size.too_large\",status=\"rejected\"}", after) == 1)
            #expect(delta("imagehub_processing_latency_seconds_count", after) == 2)
            #expect(after["imagehub_backlog"] == 0)
            #expect(after["imagehub_images{status=\"accepted\"}"] == 1 && after["imagehub_images{status=\"rejected\"}"] == 1)
            #expect(delta("imagehub_stage_seconds_count{stage=\"decode\"}", after) == 1, "the refused header never reaches the decoder")
        }
    }

    @Test("a connection cut mid-body is counted in imagehub_requests_cut_total and stores nothing")
    func cutConnectionsAreCounted() async throws {
        let t = try TestHub(labels: ["Banana"])
        defer { t.remove() }
        let key = t.keys[.supplier]!
        try await t.serving { base in
            let port = base.split(separator: ":").last.map(String.init) ?? "0"
            let before = try await Self.scrape(base, t)
            // A phone that announces 200 kB, sends 5 kB and loses its network.
            let script = """
                import socket, sys
                s = socket.create_connection(("127.0.0.1", \(port)))
                head = ("POST /v1/images HTTP/1.1\\r\\nHost: hub\\r\\nAuthorization: Bearer \(key)\\r\\n"
                        "Content-Type: multipart/form-data; boundary=b\\r\\nContent-Length: 200000\\r\\n\\r\\n")
                s.sendall(head.encode() + b"--b\\r\\nContent-Disposition: form-data; name=\\"label\\"\\r\\n\\r\\nBanana\\r\\n--b\\r\\n" + b"x" * 5000)
                s.close()
                """
            let (status, _) = try await runProgram(DocsTests.root.appendingPathComponent(".venv/bin/python"), ["-c", script])
            #expect(status == 0)
            var cut = 0.0
            for _ in 0..<100 {
                cut = (try await Self.scrape(base, t)["imagehub_requests_cut_total"] ?? 0) - (before["imagehub_requests_cut_total"] ?? 0)
                if cut >= 1 { break }
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(cut == 1)
            #expect(try t.hub.catalog.statusCounts().values.reduce(0, +) == 0, "nothing of the cut upload was stored")
        }
    }

    static func scrape(_ base: String, _ t: TestHub) async throws -> [String: Double] {
        var request = URLRequest(url: URL(string: base + "/metrics")!)
        request.setValue(t.bearer(.requester), forHTTPHeaderField: "Authorization")
        let (data, _) = try await URLSession.shared.data(for: request)
        return samples(String(decoding: data, as: UTF8.self))
    }
}
