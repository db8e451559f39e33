import Catalog
import Foundation

/// A catalog engine the tests run on.
public enum CatalogEngine: String, Sendable, CaseIterable, CustomStringConvertible {
    case sqlite
    case postgres

    public var description: String { rawValue }
}

/// Catalogs for tests: SQLite files in temporary directories, and PostgreSQL databases on the private
/// server `make test` starts (`scripts/with-postgres.sh` sets `IMAGEHUB_TEST_POSTGRES_URL`).
public enum TestCatalogs {
    /// The PostgreSQL server the tests may use, if one was started for them.
    public static var serverURL: String? {
        ProcessInfo.processInfo.environment["IMAGEHUB_TEST_POSTGRES_URL"].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// The engines a catalog test runs on: both under `make test`; SQLite alone, with a note, under a bare
    /// `swift test` that has no server.
    public static let engines: [CatalogEngine] = {
        if serverURL != nil { return CatalogEngine.allCases }
        print("note: IMAGEHUB_TEST_POSTGRES_URL is not set, so the catalog tests run on SQLite only (make test starts PostgreSQL)")
        return [.sqlite]
    }()

    /// The `catalog.url` of a fresh, empty PostgreSQL database (nil for SQLite: the hub's data directory holds it).
    public static func url(for engine: CatalogEngine) throws -> String? {
        guard engine == .postgres else { return nil }
        guard let server = serverURL else { throw TestCatalogError.noServer }
        return try Catalog.createPostgresDatabase(serverURL: server, name: "t_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: ""))
    }

    /// A fresh catalog on `engine`, with the directory that holds it when it is SQLite.
    public static func make(_ engine: CatalogEngine) throws -> (catalog: Catalog, directory: URL) {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("imagehub-catalog-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return (try Catalog.open(dataDirectory: directory, url: try url(for: engine)), directory)
    }
}

enum TestCatalogError: Error, CustomStringConvertible {
    case noServer
    var description: String { "no PostgreSQL server for the tests: run them with make test (IMAGEHUB_TEST_POSTGRES_URL)" }
}
