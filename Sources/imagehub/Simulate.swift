import ArgumentParser
import Foundation
import HubCore
import Simulator

struct Simulate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Play many phones uploading labelled photos to a running hub over flaky networks, then report.",
        discussion: """
            Photos come from --images DIR (labels from folder names), or from Open Images image-level labels
            (--openimages CSV --classes CSV --images DIR: each ImageID is found under DIR as ImageID.jpg).
            Every acknowledged image is followed until it reaches a final status; `lost` counts those that
            never do, and the command exits with status 1 when it is not 0.
            """)

    @Option(help: "The hub's base URL; repeat it to spread the phones over several API nodes.") var target: [String] = ["http://127.0.0.1:8080"]
    @Option(help: "API key (supplier role; admin with --create-labels).") var key: String
    @Option(help: "Concurrent virtual phones.") var devices = 100
    @Option(help: "Folder of photos (with --openimages: where to find each ImageID).") var images: String
    @Option(help: "Open Images image-level labels CSV (ImageID,Source,LabelName,Confidence).") var openimages: String?
    @Option(help: "Open Images class descriptions CSV (MID,DisplayName), with --openimages.") var classes: String?
    @Option(help: "Uploads per second over all phones (Poisson arrivals); without it, closed loop.") var rate: Double?
    @Option(help: "Seconds to keep uploading.") var duration: Double?
    @Option(help: "Uploads in all (without --duration or --count: one pass over the photos).") var count: Int?
    @Flag(help: "Upload with tus (resumable) instead of multipart.") var resumable = false
    @Option(help: "Fraction (0–1) of uploads whose connection is cut mid-body, then retried or resumed.") var flaky = 0.0
    @Option(help: "Seed for the order of photos, the devices and the cuts.") var seed: UInt64 = 1
    @Option(help: "City the phones are in, as LAT,LON.") var city = "52.52,13.405"
    @Flag(help: "Create labels the hub lacks (needs an admin key).") var createLabels = false
    @Option(help: "Seconds to wait after the last upload for every acknowledged image to be final.") var settle = 300.0
    @Option(help: "tus PATCH size in bytes (0: the rest of the file in one request).") var chunkSize = 0
    @Option(help: "Ask the hub to answer each multipart upload with its verdict, waiting up to this many seconds (Prefer: wait=N, N ≤ 30).")
    var wait: Int?
    @Flag(help: "Send what the hub's collection quests ask for first (GET /v1/quests, read every 5 s); each photo is sent once.")
    var followQuests = false
    @Flag(help: "Print the report as JSON.") var json = false

    func validate() throws {
        guard (openimages == nil) == (classes == nil) else { throw ValidationError("--openimages and --classes go together") }
        guard (0...1).contains(flaky) else { throw ValidationError("--flaky is a fraction between 0 and 1") }
        guard devices >= 1 else { throw ValidationError("--devices must be at least 1") }
        if let rate, rate <= 0 { throw ValidationError("--rate must be positive") }
        guard parsedCity != nil else { throw ValidationError("--city is LAT,LON, for example 52.52,13.405") }
    }

    var parsedCity: (Double, Double)? {
        let parts = city.split(separator: ",").compactMap { Double($0.trimmingCharacters(in: .whitespaces)) }
        guard parts.count == 2, abs(parts[0]) <= 90, abs(parts[1]) <= 180 else { return nil }
        return (parts[0], parts[1])
    }

    func run() async throws {
        let photos: [SimulatedPhoto]
        if let openimages, let classes {
            let found = try Workload.openImages(labels: openimages, classes: classes, images: images)
            if found.missing > 0 { FileHandle.standardError.write(Data("simulate: \(found.missing) labelled images have no file under \(images)\n".utf8)) }
            photos = found.photos
        } else {
            photos = try Workload.folders(images)
        }
        var options = SimulationOptions(targets: target, key: key, photos: photos)
        options.devices = devices
        options.rate = rate
        options.duration = duration.map { .milliseconds(Int64($0 * 1000)) }
        options.count = count
        options.transport = resumable ? .tus : .multipart
        options.flaky = flaky
        options.seed = seed
        (options.cityLat, options.cityLon) = parsedCity!
        options.createLabels = createLabels
        options.settleTimeout = .milliseconds(Int64(settle * 1000))
        options.chunkSize = chunkSize
        options.wait = wait
        options.followQuests = followQuests
        let report = try await Simulation.run(options) { FileHandle.standardError.write(Data("simulate: \($0)\n".utf8)) }
        print(json ? report.json : report.table)
        if report.lost > 0 { throw ExitCode(1) }
    }
}
