import ArgumentParser
import Catalog
import Foundation
import HubServer
import Organize

struct Labels: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Manage labels.", subcommands: [Import.self, Create.self])

    struct Import: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Import Open Images class descriptions (and hierarchy).")

        @OptionGroup var data: DataOption
        @Argument(help: "Class descriptions CSV (MID,DisplayName).") var csv: String
        @Option(help: "Hierarchy JSON in the bbox_labels_600_hierarchy.json shape.") var hierarchy: String?

        func run() async throws {
            let hub = try await Hub.open(path: data.data, processing: false)
            let classes = try LabelImport.classes(csv: try String(contentsOfFile: csv, encoding: .utf8))
            let edges = try hierarchy.map { try LabelImport.edges(hierarchyJSON: try Data(contentsOf: URL(fileURLWithPath: $0))) } ?? []
            let result = try hub.catalog.importLabels(classes: classes, edges: edges)
            print("read \(classes.count) classes: \(result.created) labels created, \(result.linked) parent links set")
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create one label.")

        @OptionGroup var data: DataOption
        @Argument(help: "Label name.") var name: String
        @Option(help: "Parent label name.") var parent: String?
        @Option(help: "Open Images MID.") var mid: String?

        func run() async throws {
            let hub = try await Hub.open(path: data.data, processing: false)
            let label = try hub.catalog.createLabel(name: name, parent: parent, mid: mid)
            print("created label '\(label.name)' (\(label.id!))")
        }
    }
}
