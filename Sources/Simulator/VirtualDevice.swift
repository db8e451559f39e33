import AsyncHTTPClient
import Foundation
import HubCore
import NIOCore

/// One simulated phone: a model, a home near the city, a batch per session of uploads, and the retry
/// habits of a mobile upload library (back off on errors, wait out `Retry-After`, resume tus uploads
/// from the server's offset). Runs as one task; many share one HTTP client.
struct VirtualDevice {
    static let models = ["Pixel 8", "Pixel 7a", "iPhone 15", "iPhone 13 mini", "Galaxy S24", "Galaxy A54", "Xperia 10 V", "moto g84"]

    let index: Int
    let client: HubClient
    let options: SimulationOptions
    let tally: Tally
    let queue: UploadQueue
    var rng: SeededRandom
    let model: String
    let home: (lat: Double, lon: Double)
    var batch: String?
    var batchLeft = 0

    /// What became of one upload.
    enum Result {
        case acknowledged(id: String, existing: Bool)
        /// Acknowledged with its final verdict (`Prefer: wait` honoured): `outcome` as the poller writes it.
        case answered(id: String, outcome: String)
        case refused(code: String)
        case gaveUp
    }

    init(index: Int, client: HubClient, options: SimulationOptions, tally: Tally, queue: UploadQueue) {
        self.index = index
        self.client = client
        self.options = options
        self.tally = tally
        self.queue = queue
        rng = SeededRandom(seed: options.seed &* 1_000_003 &+ UInt64(index))
        model = Self.models[Int.random(in: 0..<Self.models.count, using: &rng)]
        // Homes spread over about 5 km around the city centre.
        home = (options.cityLat + 0.045 * rng.gaussian(), options.cityLon + 0.07 * rng.gaussian())
    }

    var deviceName: String { "\(model) #\(index)" }

    /// Uploads until the queue runs dry (or the task is cancelled).
    mutating func run() async {
        while !Task.isCancelled, let job = await queue.take() {
            if let at = job.scheduled { try? await Task.sleep(until: at, clock: .continuous) }
            // Open loop: latency counts from when the upload was due, so a slow hub cannot hide its queue.
            let start = job.scheduled ?? .now
            let photo = options.photos[job.photo]
            guard var bytes = try? Data(contentsOf: photo.file) else {
                tally.update { $0.sent += 1; $0.refused["files.unreadable", default: 0] += 1 }
                continue
            }
            if job.pass > 0 { bytes = Self.stamped(bytes, note: "imagehub simulate: pass \(job.pass), device \(index), upload \(job.index)") }
            tally.update { $0.sent += 1 }
            await startSessionIfNeeded()
            let fields = metadata(photo)
            let cut = Double.random(in: 0..<1, using: &rng) < options.flaky
            let result = options.transport == .tus
                ? await tus(bytes, fields: fields, filename: photo.file.lastPathComponent, cut: cut)
                : await multipart(bytes, fields: fields, filename: photo.file.lastPathComponent, cut: cut)
            switch result {
            case .acknowledged(let id, let existing): tally.acknowledged(id: id, existing: existing, bytes: bytes.count, start: start)
            case .answered(let id, let outcome): tally.answered(id: id, outcome: outcome, bytes: bytes.count, start: start)
            case .refused(let code): tally.update { $0.refused[code, default: 0] += 1 }
            case .gaveUp: tally.update { $0.gaveUp += 1 }
            }
        }
    }

    /// A new batch (a session of the app) every 5–20 uploads, with the device's place.
    mutating func startSessionIfNeeded() async {
        guard batchLeft <= 0 else { batchLeft -= 1; return }
        batchLeft = Int.random(in: 5...20, using: &rng) - 1
        let answer = try? await client.json(.POST, "/v1/batches", ["device": deviceName, "lat": home.lat, "lon": home.lon])
        batch = answer.flatMap { $0.status == 201 ? $0.json["id"] as? String : nil }
    }

    /// The upload's fields: label, device, batch, a place near home and when the photo was taken.
    mutating func metadata(_ photo: SimulatedPhoto) -> [(String, String)] {
        var fields = [("label", photo.label), ("device", deviceName)]
        if let batch { fields.append(("batch", batch)) }
        fields.append(("lat", String(format: "%.6f", home.lat + 0.002 * rng.gaussian())))
        fields.append(("lon", String(format: "%.6f", home.lon + 0.003 * rng.gaussian())))
        fields.append(("captured_at", Date().addingTimeInterval(-Double.random(in: 5...7200, using: &rng)).ISO8601Format()))
        return fields
    }

    // MARK: multipart

    mutating func multipart(_ bytes: Data, fields: [(String, String)], filename: String, cut: Bool) async -> Result {
        var form = MultipartBody()
        for (name, value) in fields { form.field(name, value) }
        form.file(filename: filename, bytes)
        let body = form.closed()
        let buffer = ByteBuffer(bytes: body)
        var cutNext = cut
        var failures = 0, waits = 0
        while failures < options.maxAttempts {
            let cutAt = cutNext ? Int.random(in: body.count / 10...body.count * 9 / 10, using: &rng) : nil
            cutNext = false
            do {
                var headers = [("Content-Type", form.contentType)]
                if let wait = options.wait { headers.append(("Prefer", "wait=\(wait)")) }
                let answer = try await client.send(.POST, "/v1/images", headers: headers,
                                                   body: ChunkedBody(bytes: buffer, chunkSize: 64 * 1024, cutAfter: cutAt).requestBody)
                switch answer.status {
                case 200 where answer.headers.first(name: "Preference-Applied") != nil:
                    // The verdict came with the answer.
                    guard let id = answer.json["id"] as? String, let status = answer.json["status"] as? String else { return .refused(code: "response.invalid") }
                    let reasons = answer.json["reasons"] as? [String] ?? []
                    return .answered(id: id, outcome: reasons.isEmpty ? status : "\(status) \(reasons.joined(separator: ","))")
                case 200, 202:
                    guard let id = answer.json["id"] as? String else { return .refused(code: "response.invalid") }
                    return .acknowledged(id: id, existing: answer.status == 200)
                default:
                    if let refusal = await retryLater(after: answer, failures: &failures, waits: &waits) { return refusal }
                }
            } catch {
                await failed(&failures, cut: cutAt != nil)
            }
        }
        return .gaveUp
    }

    // MARK: tus

    /// Counts a resume when the server kept bytes past `offset`: they are not sent again.
    func resumed(from offset: Int, at kept: Int) {
        if kept > offset { tally.update { $0.resumes += 1; $0.bytesKept += kept - offset } }
    }

    mutating func tus(_ bytes: Data, fields: [(String, String)], filename: String, cut: Bool) async -> Result {
        let whole = ByteBuffer(bytes: bytes)
        let metadata = (fields + [("filename", filename)]).map { "\($0.0) \(Data($0.1.utf8).base64EncodedString())" }.joined(separator: ",")
        var location: String?
        var offset = 0
        var cutNext = cut
        var failures = 0, waits = 0
        while failures < options.maxAttempts {
            do {
                guard let upload = location else {
                    let answer = try await client.send(.POST, "/v1/uploads", headers: [
                        ("Tus-Resumable", "1.0.0"), ("Upload-Length", "\(bytes.count)"), ("Upload-Metadata", metadata),
                    ])
                    switch answer.status {
                    case 201:
                        location = answer.headers.first(name: "Location")
                        offset = 0
                        if location == nil { return .refused(code: "response.invalid") }
                    default:
                        if let refusal = await retryLater(after: answer, failures: &failures, waits: &waits) { return refusal }
                    }
                    continue
                }
                let end = options.chunkSize > 0 ? min(bytes.count, offset + options.chunkSize) : bytes.count
                let slice = whole.getSlice(at: offset, length: end - offset)!
                let cutAt = cutNext && slice.readableBytes > 1 ? Int.random(in: slice.readableBytes / 10...slice.readableBytes * 9 / 10, using: &rng) : nil
                cutNext = false
                let answer: HubClient.Answer
                do {
                    answer = try await client.send(.PATCH, upload, headers: [
                        ("Tus-Resumable", "1.0.0"), ("Upload-Offset", "\(offset)"), ("Content-Type", "application/offset+octet-stream"),
                    ], body: ChunkedBody(bytes: slice, chunkSize: 64 * 1024, cutAfter: cutAt).requestBody)
                } catch {
                    await failed(&failures, cut: cutAt != nil)
                    // Ask the server how much it kept, and go on from there.
                    switch try await resumeOffset(upload) {
                    case .offset(let kept):
                        resumed(from: offset, at: kept)
                        offset = kept
                    case .done(let id): return .acknowledged(id: id, existing: false)
                    case .gone: location = nil
                    }
                    continue
                }
                switch answer.status {
                case 204:
                    if let id = answer.headers.first(name: "Upload-Image-Id") { return .acknowledged(id: id, existing: false) }
                    let moved = answer.headers.first(name: "Upload-Offset").flatMap(Int.init) ?? offset
                    if moved <= offset { failures += 1 }  // the server took nothing: do not loop on it forever
                    offset = moved
                case 409 where answer.errorCode == "tus.offset_mismatch" || answer.errorCode == "tus.busy":
                    failures += 1
                    // tus.busy: the server (or another API node) is still finishing the request that was cut.
                    if answer.errorCode == "tus.busy" { try await Task.sleep(for: .milliseconds(250)) }
                    if case .offset(let kept) = try await resumeOffset(upload) {
                        // A cut request the server finished storing meanwhile: what it kept is not sent again.
                        resumed(from: offset, at: kept)
                        offset = kept
                    } else {
                        location = nil
                    }
                case 404, 410:
                    location = nil
                default:
                    if let refusal = await retryLater(after: answer, failures: &failures, waits: &waits) { return refusal }
                }
            } catch {
                await failed(&failures)
            }
        }
        return .gaveUp
    }

    enum Resume { case offset(Int), done(String), gone }

    /// `HEAD` of a tus upload: the offset to go on from, its image if it is complete, or gone (expired).
    func resumeOffset(_ upload: String) async throws -> Resume {
        let answer = try await client.send(.HEAD, upload, headers: [("Tus-Resumable", "1.0.0")])
        if let id = answer.headers.first(name: "Upload-Image-Id") { return .done(id) }
        guard answer.status == 200, let offset = answer.headers.first(name: "Upload-Offset").flatMap(Int.init) else { return .gone }
        return .offset(offset)
    }

    // MARK: waiting like a phone

    /// Most 503s one upload waits out before the phone gives up on it.
    static let maxBackpressureWaits = 100

    /// After an answer that is no success: waits out a 503 (up to `maxBackpressureWaits` per upload) or backs
    /// off after a 5xx and returns nil to try again; anything else (4xx) is the upload's refusal.
    mutating func retryLater(after answer: HubClient.Answer, failures: inout Int, waits: inout Int) async -> Result? {
        if answer.status == 503, waits < Self.maxBackpressureWaits {
            waits += 1
            await waitOut(answer)
            return nil
        }
        if answer.status >= 500 {
            await failed(&failures)
            return nil
        }
        return .refused(code: answer.errorCode ?? "http.\(answer.status)")
    }

    /// Sleeps for the answer's `Retry-After` (1 s if absent) plus up to 20% jitter, so phones do not return in lockstep.
    mutating func waitOut(_ answer: HubClient.Answer) async {
        tally.update { $0.backpressureWaits += 1 }
        let seconds = (answer.retryAfter ?? 1) * Double.random(in: 1...1.2, using: &rng)
        try? await Task.sleep(for: .milliseconds(Int(seconds * 1000)))
    }

    /// Counts a failed attempt (a cut of ours, or a transport error or 5xx), then backs off exponentially
    /// with jitter: up to 0.2 s, 0.4 s, … capped at 5 s.
    mutating func failed(_ failures: inout Int, cut: Bool = false) async {
        failures += 1
        tally.update { if cut { $0.cuts += 1 } else { $0.transportErrors += 1 } }
        let cap = min(5.0, 0.2 * pow(2, Double(failures - 1)))
        try? await Task.sleep(for: .milliseconds(Int(Double.random(in: cap / 2...cap, using: &rng) * 1000)))
    }

    /// A JPEG with a comment segment (`FF FE`) after its start marker: new bytes, the same pixels. Phones
    /// send new photos; a photo folder reused for a long run is made of new uploads this way (the hub still
    /// finds them to be near duplicates of the first pass). Other formats are sent unchanged.
    static func stamped(_ jpeg: Data, note: String) -> Data {
        guard jpeg.count > 2, jpeg[jpeg.startIndex] == 0xFF, jpeg[jpeg.startIndex + 1] == 0xD8 else { return jpeg }
        let payload = Array(note.utf8.prefix(60_000))
        let length = payload.count + 2
        var out = Data([0xFF, 0xD8, 0xFF, 0xFE, UInt8(length >> 8), UInt8(length & 0xFF)])
        out.append(contentsOf: payload)
        out.append(jpeg.dropFirst(2))
        return out
    }
}
