import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Image files under a folder by extension (README, CSV and other files skipped), in a stable order.
/// Their content is still sniffed like any upload's. Symbolic links are followed, to files and to folders
/// (a folder of links to a dataset is a dataset), without going round a cycle.
public enum ImageFiles {
    public static let extensions: Set<String> = ["jpg", "jpeg", "png", "webp", "heic", "heif"]

    /// What a walk found: the image files, sorted by path (as reached: a linked folder's name stays its
    /// link's, so a label taken from the parent folder is the one a person sees), and every other entry with
    /// why it was passed over.
    public struct Scan: Sendable {
        public var files: [URL] = []
        public var skipped: [(path: String, why: String)] = []

        /// One line per reason, with a count and the first few paths.
        public var skippedSummary: [String] {
            let byReason = Dictionary(grouping: skipped, by: \.why)
            return byReason.keys.sorted().map { why in
                let paths = byReason[why]!.map(\.path)
                let shown = paths.prefix(3).joined(separator: ", ")
                return "skipped \(paths.count) (\(why)): \(shown)\(paths.count > 3 ? ", …" : "")"
            }
        }
    }

    /// Every image file below `directory`, sorted by path; `say` hears what was skipped and why (the
    /// command-line tools pass `toStandardError`).
    public static func find(in directory: String, say: ((String) -> Void)? = nil) throws -> [URL] {
        let found = try scan(directory)
        if let say { for line in found.skippedSummary { say(line) } }
        return found.files
    }

    /// `files` with the largest first (ties by path): for a bulk import, whose photos the workers take in
    /// the order they were stored. Longest-processing-time-first scheduling: the workers start on the photos
    /// that take longest and the small ones fill in at the end, so the cores finish together instead of one
    /// decoding a 20 MP photo alone while the other waits.
    public static func largestFirst(_ files: [URL]) -> [URL] {
        let sized = files.map { file -> (URL, Int64) in
            var info = stat()
            return (file, stat(file.path, &info) == 0 ? Int64(info.st_size) : 0)
        }
        return sized.sorted { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0.path < $1.0.path }.map(\.0)
    }

    /// Writes a line to standard error.
    public static let toStandardError: @Sendable (String) -> Void = { line in
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }

    /// Walks `directory`, following links to files and folders, each real folder once.
    public static func scan(_ directory: String) throws -> Scan {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue,
              let root = realPath(directory) else {
            throw HubError(400, "files.unreadable", "cannot read the folder \(directory)")
        }
        var scan = Scan()
        var seen: Set<String> = [root]
        walk(URL(fileURLWithPath: directory), into: &scan, seen: &seen)
        scan.files.sort { $0.path < $1.path }
        scan.skipped.sort { $0.path < $1.path }
        return scan
    }

    static func walk(_ folder: URL, into scan: inout Scan, seen: inout Set<String>) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder.path) else {
            scan.skipped.append((folder.path, "folder not readable"))
            return
        }
        for name in names.sorted() where !name.hasPrefix(".") {
            let url = folder.appendingPathComponent(name)
            // `fileExists` follows links: a link to a folder is a folder, a dangling link is nothing.
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else {
                scan.skipped.append((url.path, "broken link"))
                continue
            }
            if isDirectory.boolValue {
                guard let real = realPath(url.path), seen.insert(real).inserted else {
                    scan.skipped.append((url.path, "folder already walked (a link cycle or a second link to it)"))
                    continue
                }
                walk(url, into: &scan, seen: &seen)
            } else if !extensions.contains(url.pathExtension.lowercased()) {
                scan.skipped.append((url.path, "not an image file name"))
            } else if !FileManager.default.isReadableFile(atPath: url.path) {
                scan.skipped.append((url.path, "not readable"))
            } else if let real = realPath(url.path), (try? FileManager.default.attributesOfItem(atPath: real)[.type] as? FileAttributeType) != .typeRegular {
                scan.skipped.append((url.path, "not a regular file"))
            } else {
                scan.files.append(url)
            }
        }
    }

    /// The canonical path (links resolved), or nil where it cannot be had.
    static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }
}
