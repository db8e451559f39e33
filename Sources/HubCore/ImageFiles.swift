import Foundation

/// Image files under a folder by extension (README, CSV and other files skipped), in a stable order.
/// Their content is still sniffed like any upload's.
public enum ImageFiles {
    public static let extensions: Set<String> = ["jpg", "jpeg", "png", "webp", "heic", "heif"]

    /// Every image file below `directory`, sorted by path.
    public static func find(in directory: String) throws -> [URL] {
        let root = URL(fileURLWithPath: directory)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue,
              let walker = FileManager.default.enumerator(at: root, includingPropertiesForKeys: [.isRegularFileKey], options: [.skipsHiddenFiles]) else {
            throw HubError(400, "files.unreadable", "cannot read the folder \(directory)")
        }
        var files: [URL] = []
        for case let url as URL in walker where extensions.contains(url.pathExtension.lowercased())
            && (try? url.resourceValues(forKeys: [.isRegularFileKey]).isRegularFile) == true {
            files.append(url)
        }
        return files.sorted { $0.path < $1.path }
    }
}
