import BlobStore
import Catalog
import Foundation
import HubCore

/// Layouts a dataset download can take.
public enum ExportFormat: String, Sendable, CaseIterable {
    /// `LABEL/ID.jpg`, the layout torchvision's ImageFolder and Keras read.
    case imagefolder
    /// `images/ID.jpg` plus Open Images `labels.csv` (ImageID,Source,LabelName,Confidence) and `class-descriptions.csv`.
    case openimages
}

/// Streams accepted canonical images of chosen labels as a tar archive, a page of images at a time,
/// so memory stays constant however large the dataset.
public struct DatasetExporter: Sendable {
    public let catalog: Catalog
    public let blobs: any BlobStore
    static let pageSize = 256

    public init(catalog: Catalog, blobs: any BlobStore) {
        self.catalog = catalog
        self.blobs = blobs
    }

    /// Resolves the labels first, so an unknown label is refused before any byte is sent.
    public func labels(_ names: [String], descendants: Bool) throws -> [LabelRecord] {
        guard !names.isEmpty else { throw HubError(400, "labels.missing", "name at least one label") }
        return try catalog.labels(named: names, descendants: descendants)
    }

    /// Writes the archive for `labels` through `write`; returns how many images it holds.
    @discardableResult
    public func export(labels: [LabelRecord], format: ExportFormat, write: (Data) async throws -> Void) async throws -> Int {
        let ids = labels.compactMap(\.id)
        let byId = Dictionary(uniqueKeysWithValues: labels.map { ($0.id!, $0) })
        return try await archive(labels: labels, format: format, write: write) { cursor in
            let page = try catalog.images(labelIds: ids, status: .accepted, after: cursor, limit: Self.pageSize)
            return (page.compactMap { image in byId[image.labelId].map { (image, $0) } },
                    page.count == Self.pageSize ? page.last?.id : nil)
        }
    }

    /// Writes the archive of an immutable dataset version: exactly its images, each under the label it
    /// was trained as (which may be an ancestor of the image's own label).
    @discardableResult
    public func export(version id: String, format: ExportFormat, write: (Data) async throws -> Void) async throws -> Int {
        guard let (version, entries) = try catalog.datasetVersion(id: id) else {
            throw HubError(404, "dataset.unknown", "no dataset version \(id)")
        }
        let names = (try? JSONDecoder().decode([String].self, from: Data(version.labels.utf8))) ?? []
        let labels = try names.compactMap { try catalog.label(named: $0) }
        let byName = Dictionary(labels.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        let sorted = entries.sorted { $0.imageId < $1.imageId }
        return try await archive(labels: labels, format: format, write: write) { cursor in
            let start = cursor.flatMap(Int.init) ?? 0
            let slice = sorted[start..<min(start + Self.pageSize, sorted.count)]
            let images = Dictionary(uniqueKeysWithValues: try catalog.images(ids: slice.map(\.imageId)).map { ($0.id, $0) })
            let items = slice.compactMap { e in images[e.imageId].flatMap { image in byName[e.label].map { (image, $0) } } }
            return (items, start + Self.pageSize < sorted.count ? String(start + Self.pageSize) : nil)
        }
    }

    /// The tar stream: pages of (image, label) from `page(cursor)` until it returns no next cursor.
    private func archive(labels: [LabelRecord], format: ExportFormat, write: (Data) async throws -> Void,
                         page: (String?) throws -> ([(ImageRecord, LabelRecord)], String?)) async throws -> Int {
        let csvFile = FileManager.default.temporaryDirectory.appendingPathComponent("export-\(UUID().uuidString).csv")
        FileManager.default.createFile(atPath: csvFile.path, contents: Data("ImageID,Source,LabelName,Confidence\n".utf8))
        let csv = try FileHandle(forWritingTo: csvFile)
        defer {
            try? csv.close()
            try? FileManager.default.removeItem(at: csvFile)
        }
        try csv.seekToEnd()
        var cursor: String?
        var count = 0
        repeat {
            let (items, next) = try page(cursor)
            for (image, label) in items {
                guard let key = image.canonicalKey else { continue }
                let bytes = try blobs.read(key)
                let path = format == .imagefolder ? "\(Self.safe(label.name))/\(image.id).jpg" : "images/\(image.id).jpg"
                try await write(TarWriter.header(name: path, size: bytes.count, modified: image.updatedAt))
                try await write(bytes)
                try await write(TarWriter.padding(for: bytes.count))
                try csv.write(contentsOf: Data("\(image.id),imagehub,\(Self.csvField(label.mid ?? label.name)),1\n".utf8))
                count += 1
            }
            cursor = next
        } while cursor != nil
        if format == .openimages {
            try csv.synchronize()
            try await writeFile(csvFile, as: "labels.csv", write: write)
            let classes = labels.map { "\(Self.csvField($0.mid ?? $0.name)),\(Self.csvField($0.displayName))\n" }.joined()
            let data = Data(classes.utf8)
            try await write(TarWriter.header(name: "class-descriptions.csv", size: data.count))
            try await write(data)
            try await write(TarWriter.padding(for: data.count))
        }
        try await write(TarWriter.end)
        return count
    }

    private func writeFile(_ file: URL, as name: String, write: (Data) async throws -> Void) async throws {
        let size = (try FileManager.default.attributesOfItem(atPath: file.path)[.size] as? Int) ?? 0
        try await write(TarWriter.header(name: name, size: size))
        let reader = try FileHandle(forReadingFrom: file)
        defer { try? reader.close() }
        while let chunk = try reader.read(upToCount: 1 << 16), !chunk.isEmpty { try await write(chunk) }
        try await write(TarWriter.padding(for: size))
    }

    /// A label name safe as a directory name.
    static func safe(_ name: String) -> String {
        String(name.map { "/\\\0".contains($0) ? "_" : $0 })
    }

    static func csvField(_ s: String) -> String {
        s.contains(",") || s.contains("\"") ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
    }
}
