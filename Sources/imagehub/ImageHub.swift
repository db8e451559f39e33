import ArgumentParser
import Foundation
import Logging
import HubCore
import Imaging

@main
enum Entry {
    static func main() async {
        // Before any thread exists (NIO, libvips, libtorch), so the allocator's arena limit covers them all.
        Vips.tuneAllocator()
        // Every command logs to standard error at IMAGEHUB_LOG_LEVEL (default info; `debug` shows, for one,
        // every near-duplicate candidate's matches and inliers).
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = ProcessInfo.processInfo.environment["IMAGEHUB_LOG_LEVEL"].flatMap { Logger.Level(rawValue: $0) } ?? .info
            return handler
        }
        await ImageHub.main()
    }
}

struct ImageHub: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "imagehub",
        abstract: "Deep Images Hub: verify, preprocess and organize labelled photos as they stream in.",
        subcommands: [Serve.self, Keys.self, CatalogCommand.self, Labels.self, Ingest.self, Export.self, Train.self, ModelsCommand.self, Predict.self, Simulate.self, Bench.self]
    )
}

/// The data directory option every command shares.
struct DataOption: ParsableArguments {
    @Option(name: .long, help: "The hub's data directory (catalog, blobs, imagehub.json).")
    var data: String = "./var/hub"
}
