import Foundation

/// The real photos and Open Images files in `../shared/data` (or `IMAGEHUB_TEST_DATA`), read in place.
public enum SharedData {
    /// The data directory, or nil when this checkout has none.
    public static let directory: URL? = {
        let env = ProcessInfo.processInfo.environment["IMAGEHUB_TEST_DATA"]
        let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let candidate = env.map { URL(fileURLWithPath: $0) } ?? packageRoot.deletingLastPathComponent().appendingPathComponent("shared/data")
        return FileManager.default.fileExists(atPath: candidate.appendingPathComponent("MANIFEST.csv").path) ? candidate : nil
    }()

    /// True when real photos are available; tests that need them are skipped otherwise.
    public static var available: Bool { directory != nil }

    /// Why real-photo tests are skipped.
    public static let skipReason = "real photos not found: set IMAGEHUB_TEST_DATA or check out ../shared/data beside the repository"

    /// A file under the data directory.
    public static func url(_ path: String) -> URL { directory!.appendingPathComponent(path) }

    /// The bytes of a file under the data directory.
    public static func data(_ path: String) throws -> Data { try Data(contentsOf: url(path)) }

    /// Copies the shared photos at `paths` into `root/LABEL/`, each into the folder of the label it is paired
    /// with (a folder of class folders, as `imagehub ingest --labels-from-folders` and the benches read).
    public static func copy(_ files: [(label: String, path: String)], into root: URL) throws {
        for (label, path) in files {
            let dir = root.appendingPathComponent(label)
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            try FileManager.default.copyItem(at: url(path), to: dir.appendingPathComponent(URL(fileURLWithPath: path).lastPathComponent))
        }
    }

    /// The first `count` photos of each of `labels` (folders of `photos/`) copied into `root/LABEL/`.
    public static func copyPhotos(labels: [String], count: Int, into root: URL) throws {
        try copy(labels.flatMap { label in try photos(in: "photos/\(label)").prefix(count).map { (label, $0) } }, into: root)
    }

    /// JPEG paths (relative) in a folder of the data directory, sorted.
    public static func photos(in folder: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: url(folder).path).filter { $0.hasSuffix(".jpg") }.sorted().map { "\(folder)/\($0)" }
    }
}
