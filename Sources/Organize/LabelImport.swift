import CSV
import Catalog
import Foundation
import HubCore

/// Reads Open Images label files: class descriptions (`MID,DisplayName`, with or without a header)
/// and the `bbox_labels_600_hierarchy.json` tree (`LabelName` with `Subcategory`/`Part` children).
public enum LabelImport {
    /// `(mid, name)` pairs from a class-descriptions CSV.
    public static func classes(csv text: String) throws -> [(mid: String, name: String)] {
        let reader: CSVReader
        do { reader = try CSVReader(string: text) } catch {
            throw HubError(400, "labels.invalid_csv", "the class descriptions are not valid CSV")
        }
        var out: [(String, String)] = []
        while let row = reader.next() {
            guard row.count >= 2 else {
                if row.allSatisfy({ $0.trimmingCharacters(in: .whitespaces).isEmpty }) { continue }
                throw HubError(400, "labels.invalid_csv", "line \(out.count + 1) has \(row.count) column(s), expected MID,DisplayName")
            }
            let mid = row[0].trimmingCharacters(in: .whitespaces), name = row[1].trimmingCharacters(in: .whitespaces)
            if out.isEmpty, ["labelname", "mid"].contains(mid.lowercased()) { continue }
            guard mid.hasPrefix("/"), !name.isEmpty else {
                throw HubError(400, "labels.invalid_csv", "'\(mid)' is not an Open Images MID (e.g. /m/09qck)")
            }
            out.append((mid, name))
        }
        guard !out.isEmpty else { throw HubError(400, "labels.invalid_csv", "no classes in the CSV") }
        return out
    }

    /// `(child, parent)` MID pairs from a hierarchy JSON; the root's own MID is skipped as a parent.
    public static func edges(hierarchyJSON data: Data) throws -> [(child: String, parent: String)] {
        struct Node: Decodable {
            let LabelName: String
            let Subcategory: [Node]?
            let Part: [Node]?
        }
        let root: Node
        do { root = try JSONDecoder().decode(Node.self, from: data) } catch {
            throw HubError(400, "labels.invalid_hierarchy", "the hierarchy is not JSON in the bbox_labels_600_hierarchy.json shape")
        }
        var out: [(String, String)] = []
        var seen = Set<String>()
        func walk(_ node: Node, isRoot: Bool) {
            for child in (node.Subcategory ?? []) + (node.Part ?? []) {
                // A class can sit under several parents in Open Images; the hub's tree keeps the first.
                if !isRoot, seen.insert(child.LabelName).inserted { out.append((child.LabelName, node.LabelName)) }
                walk(child, isRoot: false)
            }
        }
        walk(root, isRoot: true)
        return out
    }
}
