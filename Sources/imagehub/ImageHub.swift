import ArgumentParser
import HubCore
import Imaging

@main
enum Entry {
    static func main() async {
        // Before any thread exists (NIO, libvips, libtorch), so the allocator's arena limit covers them all.
        Vips.tuneAllocator()
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
