import Catalog
import Foundation
import HubCore
import HubServer

/// A real hub (SQLite file, blob files) in a fresh temporary directory, with one key per role.
public struct TestHub: Sendable {
    public let hub: Hub
    public let directory: URL
    public let keys: [Role: String]

    /// Makes a hub; `configure` adjusts the settings first (limits, attempts, backoff). Embedding is off
    /// unless asked for: generated test images are noise to an ImageNet backbone, so with it on they
    /// would all be each other's semantic near duplicates.
    public init(labels: [String] = ["Banana", "Apple"], embeddings: Bool = false, engine: CatalogEngine = .sqlite,
                configure: (inout HubSettings) -> Void = { _ in }) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("imagehub-test-\(UUID().uuidString)")
        var settings = HubSettings()
        settings.workers = 2
        settings.backoffSeconds = 0.01
        settings.embeddingEnabled = embeddings
        settings.catalogURL = try TestCatalogs.url(for: engine)
        configure(&settings)
        hub = try Hub(dataDirectory: directory, settings: settings,
                      backbone: settings.embeddingEnabled ? try TestModels.backbone.get() : nil)
        var keys: [Role: String] = [:]
        for role in Role.allCases { keys[role] = try hub.catalog.createUser(name: "test-\(role.rawValue)", role: role).key }
        self.keys = keys
        for label in labels { try hub.catalog.createLabel(name: label) }
    }

    /// `Authorization` header value for a role.
    public func bearer(_ role: Role) -> String { "Bearer \(keys[role]!)" }

    /// Processes every pending job.
    public func drain() async { await hub.workers.drain() }

    /// Removes the hub's files.
    public func remove() {
        hub.catalog.close()
        try? FileManager.default.removeItem(at: directory)
    }
}
