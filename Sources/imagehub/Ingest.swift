import ArgumentParser
import Catalog
import Foundation
import Synchronization
import HubCore
import HubServer
import Ingest
import Jobs

struct Ingest: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Import a folder of images through the same pipeline as uploads, then print a summary by outcome.",
        discussion: "Exits with status 1 when any file was refused (not stored: the summary says why), 0 otherwise.")

    @OptionGroup var data: DataOption
    @Argument(help: "Folder of images.") var directory: String
    @Option(help: "Label every image with this label.") var label: String?
    @Flag(help: "Use each image's parent folder name as its label.") var labelsFromFolders = false
    @Flag(help: "Create labels that do not exist yet.") var createLabels = false
    /// Files a group commit takes at once (one blob-store sync, one transaction), and the most bytes it
    /// holds. The first group is the smallest and each next one twice as large up to these, so that the
    /// workers have their first photos at once (15 phone photos are 37 MB: one 48 MB group kept every worker
    /// waiting until all were stored).
    static let groupSize = 32
    static let groupBytes = 48 << 20
    static let firstGroupSize = 2
    static let firstGroupBytes = 8 << 20

    func validate() throws {
        guard (label == nil) != !labelsFromFolders else {
            throw ValidationError("give exactly one of --label L or --labels-from-folders")
        }
    }

    func run() async throws {
        // The backbone loads while the files are found and stored.
        let hub = try await Hub.open(path: data.data, backgroundBackbone: true) { settings in
            // With embeddings a job waits on the embedder's batches and on fsync part of its time: four workers a
            // core keep both busy (156 photos: 2.53 → 2.39 s against two a core), unless workers.count says otherwise.
            if settings.embeddingEnabled, !settings.workersConfigured { settings.workers = 4 * ProcessInfo.processInfo.activeProcessorCount }
        }
        // Largest first, so that both cores finish together (the summary is by outcome: the order shows
        // nowhere else).
        let files = ImageFiles.largestFirst(try ImageFiles.find(in: directory, say: ImageFiles.toStandardError))
        guard !files.isEmpty else { throw ValidationError("no files under \(directory)") }
        let user = try hub.catalog.localUser()
        // The workers start on the first upload while the rest are still being stored (storing runs on the
        // blocking pool, so it holds no thread the workers need).
        let storing = StoringFlag()
        // The workers wait for the backbone (it loads while the files are found and stored): if it cannot be
        // loaded they take no job, and the command ends with why once the files are stored.
        let backbone = hub.embedStage?.backbone
        let drain = Task {
            if let backbone, (try? await offload({ try backbone.waitUntilLoaded() })) == nil { return }
            await hub.workers.drain(while: { storing.isOn })
        }
        let stored: Stored
        do {
            stored = try await offload { [label, createLabels] in
                defer { storing.finish() }
                var stored = Stored()
                let progress = Progress(title: "storing", total: files.count)
                // Group commit: each group of files (at most `groupSize`, or `groupBytes` of them) shares one
                // sync of the blob store and one transaction.
                var group: [(data: Data, meta: Ingestor.Metadata)] = []
                var groupBytes = 0
                var limits = (files: Self.firstGroupSize, bytes: Self.firstGroupBytes)
                func commit() throws {
                    limits = (min(Self.groupSize, 2 * limits.files), min(Self.groupBytes, 2 * limits.bytes))
                    for outcome in try hub.ingestor.accept(group: group, user: user) {
                        switch outcome {
                        case .success(.created(let image)): stored.created.append(image.id)
                        case .success(.existing): stored.existing += 1
                        case .failure(let e): stored.refused[e.code, default: 0] += 1
                        }
                    }
                    group.removeAll(keepingCapacity: true)
                    groupBytes = 0
                }
                for (index, file) in files.enumerated() {
                    let name = label ?? file.deletingLastPathComponent().lastPathComponent
                    do {
                        if createLabels, try hub.catalog.label(named: name) == nil { try hub.catalog.createLabel(name: name) }
                        let data = try Data(contentsOf: file)
                        group.append((data, .init(label: name)))
                        groupBytes += data.count
                    } catch let e as HubError {
                        stored.refused[e.code, default: 0] += 1
                    } catch let e as CocoaError where e.code == .fileReadNoPermission || e.code == .fileReadUnknown || e.code == .fileReadNoSuchFile {
                        // A file that cannot be read is skipped and counted; a store that cannot write stops the run.
                        stored.refused["file.unreadable", default: 0] += 1
                    }
                    if group.count >= limits.files || groupBytes >= limits.bytes || index == files.count - 1 {
                        try commit()
                        progress.update(index + 1)
                    }
                }
                progress.finish()
                return stored
            }
            // A backbone that cannot be loaded ends the command here; the files' jobs wait, untouched, for a later run.
            if let backbone { try await offload { try backbone.waitUntilLoaded() } }
        } catch {
            // Jobs already claimed finish; the rest stay queued for the next run or server.
            drain.cancel()
            await drain.value
            throw error
        }
        let (created, existing, refused) = (stored.created, stored.existing, stored.refused)
        let total = try hub.catalog.backlog()
        let processing = Progress(title: "processing", total: total)
        // The bar moves every 200 ms; the command goes on the moment the last job is done.
        let bar = Task {
            while !Task.isCancelled {
                processing.update(total - ((try? hub.catalog.backlog()) ?? total))
                try? await Task.sleep(for: .milliseconds(200))
            }
        }
        await drain.value
        bar.cancel()
        await bar.value
        processing.update(total - (try hub.catalog.backlog()))
        processing.finish()
        // Re-check images accepted before their label could be judged, and cluster the labels.
        try hub.embedStage?.maintain()
        var outcomes: [String: Int] = [:]
        // 500 images a query (a query an image was 2% of importing 600 small photos).
        for image in try hub.catalog.images(ids: created) {
            outcomes["\(image.status.rawValue) \(image.reasonCodes.joined(separator: ","))".trimmingCharacters(in: .whitespaces), default: 0] += 1
        }
        print("\(files.count) files: \(created.count) new, \(existing) already in the hub, \(refused.values.reduce(0, +)) refused")
        Table(headers: ["outcome", "images"], rows: (outcomes.sorted { $0.key < $1.key } + refused.map { ("refused \($0.key)", $0.value) }.sorted { $0.0 < $1.0 })
            .map { [$0.0, String($0.1)] }).print()
        // Files that could not be stored are a failure a script must see; verdicts (rejected, quarantined) are not.
        // The catalog is closed (its log folded into the database file and flushed) and the output flushed; then
        // the process ends without tearing down what is left (the engine's threads, the index, the keypoint
        // caches): 25–30 ms of the 2.4 s an import of 300 small photos takes.
        hub.catalog.close()
        fflush(nil)
        _exit(refused.isEmpty ? 0 : 1)
    }
}

/// A one-line progress bar on standard error.
final class Progress: Sendable {
    let title: String
    let total: Int
    private let last = Mutex(-1)

    init(title: String, total: Int) {
        self.title = title
        self.total = max(total, 1)
    }

    func update(_ done: Int) {
        let width = 30
        let filled = min(width, done * width / total)
        guard last.withLock({ last in
            defer { last = filled }
            return filled != last || done == total
        }) else { return }
        let bar = String(repeating: "#", count: filled) + String(repeating: " ", count: width - filled)
        FileHandle.standardError.write(Data("\r\(title) [\(bar)] \(done)/\(total)".utf8))
    }

    func finish() { FileHandle.standardError.write(Data("\n".utf8)) }
}

/// What storing the files of `imagehub ingest` came to.
struct Stored: Sendable {
    var created: [String] = []
    var existing = 0
    var refused: [String: Int] = [:]
}
