import ArgumentParser
import Foundation
import HubServer
import Organize

extension ExportFormat: ExpressibleByArgument {}

struct Export: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Write accepted images of labels to a tar file.")

    @OptionGroup var data: DataOption
    @Option(help: "Comma-separated label names.") var labels: String
    @Flag(help: "Include images of every label below the named ones.") var descendants = false
    @Option(help: "imagefolder or openimages.") var format: ExportFormat = .imagefolder
    @Option(help: "Output tar file.") var out: String

    func run() async throws {
        let hub = try await Hub.open(path: data.data, processing: false)
        let chosen = try hub.exporter.labels(labels.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }, descendants: descendants)
        FileManager.default.createFile(atPath: out, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: out))
        defer { try? handle.close() }
        let count = try await hub.exporter.export(labels: chosen, format: format) { try handle.write(contentsOf: $0) }
        print("wrote \(count) images of \(chosen.count) label(s) to \(out)")
    }
}
