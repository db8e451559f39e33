import ArgumentParser
import Catalog
import Foundation
import HubCore
import HubServer

struct CatalogCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "catalog", abstract: "Move a hub's catalog.", subcommands: [Copy.self])

    struct Copy: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Copy an embedded hub's catalog (DATA/catalog.sqlite), every row with its ids, into an empty PostgreSQL catalog.",
            discussion: """
                Stop the hub first. Afterwards start its nodes with catalog.url set to the target and the same data \
                directory: the blobs and unfinished tus uploads are used where they are, and pending jobs are picked up.
                """)

        @OptionGroup var data: DataOption
        @Option(help: "The target catalog: postgres://user:password@host:5432/database (its schema is created).") var to: String

        func run() async throws {
            let path = URL(fileURLWithPath: data.data).appendingPathComponent("catalog.sqlite").path
            guard FileManager.default.fileExists(atPath: path) else {
                throw ValidationError("no embedded catalog at \(path)")
            }
            let source = try Catalog(path: path)
            let target = try Catalog(url: to)
            defer { source.close(); target.close() }
            let copied = try source.copy(to: target)
            print(Table(headers: ["table", "rows"], rows: copied.map { [$0.table, "\($0.rows)"] }).text)
            print("copied \(copied.map(\.rows).reduce(0, +)) rows; start the hub with IMAGEHUB_CATALOG_URL set to the target and --data \(data.data)")
        }
    }
}
