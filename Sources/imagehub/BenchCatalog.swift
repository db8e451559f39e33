import ArgumentParser
import Catalog
import Foundation
import HubCore

struct CatalogBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "catalog",
        abstract: "The catalog's own cost per operation, SQLite against PostgreSQL, one caller at a time: what an upload and a verdict pay for their state.")

    @Option(help: "A PostgreSQL server URL whose role may create databases (a fresh database is made and dropped).") var postgres: String
    @Option(help: "Operations of each kind.") var count = 2000

    func run() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("imagehub-bench-catalog-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let name = "imagehub_bench_\(UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: ""))"
        let url = try Catalog.createPostgresDatabase(serverURL: postgres, name: name)
        defer { try? Catalog.dropPostgresDatabase(serverURL: postgres, name: name) }
        var rows: [[String]] = []
        for (engine, catalog) in [("sqlite", try Catalog(path: dir.appendingPathComponent("catalog.sqlite").path)), ("postgres", try Catalog(url: url))] {
            defer { catalog.close() }
            let user = try catalog.createUser(name: "bench", role: .admin).user
            let label = try catalog.createLabel(name: "Banana").id!
            func timed(_ body: (Int) throws -> Void) rethrows -> String {
                let start = ContinuousClock.now
                for i in 0..<count { try body(i) }
                return String(format: "%.0f", ((ContinuousClock.now - start) / count).seconds * 1e6)
            }
            let lookup = try timed { _ in _ = try catalog.label(named: "banana") }
            let upload = try timed { i in
                _ = try catalog.recordUpload(.newUpload(sha256: String(format: "%064x", i), labelId: label, uploaderId: user.id!, batchId: nil,
                                                        device: nil, lat: nil, lon: nil, capturedAt: nil, bytes: 1))
            }
            let backlog = try timed { _ in _ = try catalog.backlog() }
            var next = try catalog.claimJob(worker: "w", lease: 60)
            let verdict = try timed { i in
                guard let leased = next else { return }
                next = try catalog.completeAndClaim(job: leased.job, worker: "w", verdict: Verdict(status: .accepted, phash: UInt64(i) &* 0x9E37_79B9_7F4A_7C15),
                                                    nearDistance: 6, lease: 60).next
            }
            rows.append([engine, lookup, backlog, upload, verdict])
        }
        print("bench catalog: \(count) operations of each kind, one caller")
        print(Table(headers: ["engine", "label lookup µs", "backlog µs", "upload + job µs", "verdict + next claim µs"], rows: rows).text)
    }
}
