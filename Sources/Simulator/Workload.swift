import CSV
import Foundation
import HubCore
import Organize

/// One photo the simulated phones upload, with the label it carries (and its Open Images MID, if any).
public struct SimulatedPhoto: Sendable, Equatable {
    public var file: URL
    public var label: String
    public var mid: String?

    public init(file: URL, label: String, mid: String? = nil) {
        self.file = file
        self.label = label
        self.mid = mid
    }
}

/// What the phones have to upload: photos and their labels, from a folder tree or Open Images files.
public enum Workload {
    /// Every image under `directory`, labelled by the name of the folder it is in (links followed; what
    /// was skipped is said to `say`).
    public static func folders(_ directory: String, say: ((String) -> Void)? = ImageFiles.toStandardError) throws -> [SimulatedPhoto] {
        let photos = try ImageFiles.find(in: directory, say: say).map {
            SimulatedPhoto(file: $0, label: $0.deletingLastPathComponent().lastPathComponent)
        }
        guard !photos.isEmpty else { throw HubError(400, "files.none", "no image files under \(directory)") }
        return photos
    }

    /// The photos named by an Open Images image-level labels CSV (`ImageID,Source,LabelName,Confidence`),
    /// found under `images` as `ImageID.<ext>` in any subfolder. MIDs become names through the class
    /// descriptions (`MID,DisplayName`). Rows with confidence 0 (negative verifications) are skipped; an
    /// image with several positive labels is uploaded once, under its first (the hub keeps one label per
    /// image). Also returns how many labelled images have no file.
    public static func openImages(labels: String, classes: String, images: String) throws -> (photos: [SimulatedPhoto], missing: Int) {
        let names = Dictionary(try LabelImport.classes(csv: try read(classes)).map { ($0.mid, $0.name) }) { first, _ in first }
        var files: [String: URL] = [:]
        for file in try ImageFiles.find(in: images) { files[file.deletingPathExtension().lastPathComponent] = file }

        let reader: CSVReader
        do { reader = try CSVReader(string: try read(labels), hasHeaderRow: true) } catch {
            throw HubError(400, "labels.invalid_csv", "\(labels) is not valid CSV")
        }
        guard let header = reader.headerRow, let idColumn = header.firstIndex(of: "ImageID"),
              let midColumn = header.firstIndex(of: "LabelName") else {
            throw HubError(400, "labels.invalid_csv", "\(labels) needs the columns ImageID and LabelName (Open Images image-level labels)")
        }
        let confidenceColumn = header.firstIndex(of: "Confidence")
        var photos: [SimulatedPhoto] = []
        var seen = Set<String>()
        var missing = Set<String>()
        while let row = reader.next() {
            guard row.count > max(idColumn, midColumn) else { continue }
            let id = row[idColumn], mid = row[midColumn]
            if let c = confidenceColumn, row.count > c, let confidence = Double(row[c]), confidence <= 0 { continue }
            guard !seen.contains(id) else { continue }
            guard let name = names[mid] else {
                throw HubError(400, "labels.unknown_mid", "\(mid) (image \(id)) is not in \(classes)")
            }
            guard let file = files[id] else { missing.insert(id); continue }
            seen.insert(id)
            photos.append(SimulatedPhoto(file: file, label: name, mid: mid))
        }
        guard !photos.isEmpty else { throw HubError(400, "files.none", "no image under \(images) is named in \(labels)") }
        return (photos, missing.count)
    }

    static func read(_ path: String) throws -> String {
        do { return try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw HubError(400, "files.unreadable", "cannot read \(path)")
        }
    }
}
