import Catalog
import Foundation
import HubCore
import HubServer
import HubTesting
import Hummingbird
import HummingbirdTesting
import Synchronization
import Testing

@Suite struct CatalogCopyTests {
    static let postgres: [CatalogEngine] = TestCatalogs.engines.filter { $0 == .postgres }

    @Test("an embedded hub moved onto PostgreSQL finishes its pending work and answers as before", arguments: postgres)
    func anEmbeddedHubMovesOntoPostgres(engine: CatalogEngine) async throws {
        let t = try TestHub()
        defer { t.remove() }
        let supplier = t.bearer(.supplier), admin = t.bearer(.admin)
        let uploaded = Mutex<[String]>([])
        let answers = Mutex<[String: String]>([:])
        try await t.withClient { client in
            _ = try await client.postJSON("/v1/labels", #"{"name":"Fruit"}"#, as: admin)
            _ = try await client.postJSON("/v1/labels", #"{"name":"Cherry","parent":"Fruit"}"#, as: admin)
            _ = try await client.postJSON("/v1/watchlist", #"{"label":"Banana","threshold":100}"#, as: admin)
        }
        for seed in 0..<3 {
            try await t.withClient { client in
                let id = try await client.upload(try Fixtures.image(seed: 300 + seed), label: "Banana", as: supplier).json["id"] as! String
                uploaded.withLock { $0.append(id) }
            }
        }
        await t.drain()
        let processed = uploaded.withLock { $0 }
        for seed in 0..<2 {
            try await t.withClient { client in
                let id = try await client.upload(try Fixtures.image(seed: 400 + seed), label: "Cherry", as: supplier).json["id"] as! String
                uploaded.withLock { $0.append(id) }
            }
        }
        let ids = uploaded.withLock { $0 }
        let pending = Array(ids.dropFirst(processed.count))
        try await t.withClient { client in
            for id in ids {
                let answer = String(buffer: try await client.get("/v1/images/\(id)", as: admin).body)
                answers.withLock { $0[id] = answer }
            }
            let labels = String(buffer: try await client.get("/v1/labels", as: admin).body)
            answers.withLock { $0["labels"] = labels }
        }
        let before = answers.withLock { $0 }
        #expect(try t.hub.catalog.backlog() == 2)

        // The hub stops; its catalog is copied; the same data directory comes back up on PostgreSQL.
        t.hub.catalog.close()
        let url = try #require(try TestCatalogs.url(for: .postgres))
        let source = try Catalog(path: t.directory.appendingPathComponent("catalog.sqlite").path)
        let target = try Catalog(url: url)
        let copied = try source.copy(to: target)
        #expect(copied.first { $0.table == "images" }?.rows == 5 && copied.first { $0.table == "jobs" }?.rows == 5)
        #expect(throws: HubError.self, "a catalog that is not empty is never copied into") { try source.copy(to: target) }
        source.close(); target.close()

        var settings = t.hub.settings
        settings.catalogURL = url
        let moved = try Hub(dataDirectory: t.directory, settings: settings)
        defer { moved.catalog.close() }
        #expect(moved.catalog.engine == .postgres)
        let app = Application(router: buildRouter(hub: moved))
        try await app.test(.router) { client in
            // The same keys, the same answers, ids and all.
            for id in ids {
                #expect(String(buffer: try await client.get("/v1/images/\(id)", as: admin).body) == before[id], "image \(id)")
            }
            #expect(String(buffer: try await client.get("/v1/labels", as: admin).body) == before["labels"])
            // New rows continue after the copied ids.
            let created = try await client.postJSON("/v1/labels", #"{"name":"Plum","parent":"Fruit"}"#, as: admin)
            #expect(created.status == .created, "\(String(buffer: created.body))")
            let fresh = try await client.upload(try Fixtures.image(seed: 500), label: "Plum", as: supplier)
            #expect(fresh.status == .accepted, "\(String(buffer: fresh.body))")
        }
        await moved.workers.drain()
        for id in pending + processed {
            #expect(try moved.catalog.image(id: id)?.status == .accepted, "image \(id) is final on the new catalog")
            #expect(try moved.catalog.jobs(imageId: id).map(\.state) == [.done], "and its one job is done once")
        }
        #expect(try moved.catalog.backlog() == 0 && moved.catalog.watches().count == 1)
        #expect(try moved.catalog.label(named: "Cherry")?.parentId == moved.catalog.label(named: "Fruit")?.id)
    }
}
