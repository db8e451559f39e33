import Catalog
import Crypto
import Foundation
import HTTPTypes
import HubCore
import HubServer
import HubTesting
import Hummingbird
import HummingbirdTesting
import Imaging
import NIOCore
import Testing

extension HTTPField.Name {
    static let tusResumable = HTTPField.Name("Tus-Resumable")!
    static let uploadOffset = HTTPField.Name("Upload-Offset")!
    static let uploadLength = HTTPField.Name("Upload-Length")!
    static let uploadMetadata = HTTPField.Name("Upload-Metadata")!
    static let uploadChecksum = HTTPField.Name("Upload-Checksum")!
    static let uploadImageId = HTTPField.Name("Upload-Image-Id")!
}

@Suite("tus resumable uploads and backpressure")
struct ResumableUploadTests {
    static func httpDate(_ text: String) -> Date? {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "GMT")
        f.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        return f.date(from: text)
    }

    static func metadata(_ fields: [String: String]) -> String {
        fields.sorted { $0.key < $1.key }.map { "\($0.key) \(Data($0.value.utf8).base64EncodedString())" }.joined(separator: ",")
    }

    func create(_ client: any TestClientProtocol, _ t: TestHub, length: Int, label: String = "Banana") async throws -> TestResponse {
        try await client.execute(uri: "/v1/uploads", method: .post, headers: [
            .authorization: t.bearer(.supplier), .tusResumable: "1.0.0", .uploadLength: "\(length)",
            .uploadMetadata: Self.metadata(["label": label, "filename": "a.jpg"]),
        ])
    }

    func patch(_ client: any TestClientProtocol, _ t: TestHub, _ location: String, offset: Int, _ bytes: some Collection<UInt8>,
               checksum: String? = nil, contentType: String = "application/offset+octet-stream") async throws -> TestResponse {
        var headers: HTTPFields = [.authorization: t.bearer(.supplier), .tusResumable: "1.0.0", .uploadOffset: "\(offset)", .contentType: contentType]
        if let checksum { headers[.uploadChecksum] = checksum }
        return try await client.execute(uri: location, method: .patch, headers: headers, body: ByteBuffer(bytes: Array(bytes)))
    }

    func head(_ client: any TestClientProtocol, _ t: TestHub, _ location: String) async throws -> TestResponse {
        try await client.execute(uri: location, method: .head, headers: [.authorization: t.bearer(.supplier), .tusResumable: "1.0.0"])
    }

    @Test("the protocol: discovery, creation, offsets, checksums, size, type, termination, expiry, completion")
    func protocolAndErrors() async throws {
        let t = try TestHub()
        defer { t.remove() }
        let photo = [UInt8](try Fixtures.image(seed: 611))
        try await t.withClient { client in
            let options = try await client.execute(uri: "/v1/uploads", method: .options)
            #expect(options.status == .noContent && options.headers[HTTPField.Name("Tus-Extension")!]?.contains("checksum") == true)
            #expect(options.headers[HTTPField.Name("Tus-Version")!] == "1.0.0")

            let noVersion = try await client.execute(uri: "/v1/uploads", method: .post, headers: [.authorization: t.bearer(.supplier), .uploadLength: "10"])
            #expect(noVersion.status.code == 412)
            #expect(try await create(client, t, length: 50 * 1024 * 1024).status.code == 413)
            let unknown = try await create(client, t, length: 100, label: "Zebra")
            #expect(unknown.status.code == 422 && unknown.errorCode == "label.unknown")

            let created = try await create(client, t, length: photo.count)
            #expect(created.status == .created)
            let location = try #require(created.headers[.location])
            #expect(created.headers[.uploadOffset] == "0")

            let half = photo.count / 2
            let wrongOffset = try await patch(client, t, location, offset: 5, photo[..<half])
            #expect(wrongOffset.status.code == 409 && wrongOffset.errorCode == "tus.offset_mismatch")
            // An offset past any upload is a mismatch like another (an unknown upload's is 404); one that is not
            // a whole number is malformed.
            for (offset, status, code) in [("185156718365556240266186513711104", 409, "tus.offset_mismatch"), ("-5", 400, "tus.bad_offset"),
                                           ("12abc", 400, "tus.bad_offset")] {
                let answer = try await client.execute(uri: location, method: .patch, headers: [
                    .authorization: t.bearer(.supplier), .tusResumable: "1.0.0", .uploadOffset: offset,
                    .contentType: "application/offset+octet-stream"], body: ByteBuffer(bytes: photo[..<10]))
                #expect(answer.status.code == status && answer.errorCode == code, "\(offset)")
            }
            let unknownUpload = try await client.execute(uri: "/v1/uploads/no-such-upload", method: .patch, headers: [
                .authorization: t.bearer(.supplier), .tusResumable: "1.0.0", .uploadOffset: "185156718365556240266186513711104",
                .contentType: "application/offset+octet-stream"], body: ByteBuffer(bytes: photo[..<10]))
            #expect(unknownUpload.status.code == 404)
            let wrongType = try await patch(client, t, location, offset: 0, photo[..<half], contentType: "application/octet-stream")
            #expect(wrongType.status.code == 415)
            let badSum = try await patch(client, t, location, offset: 0, photo[..<half], checksum: "sha1 \(Data(repeating: 1, count: 20).base64EncodedString())")
            #expect(badSum.status.code == 460 && badSum.errorCode == "tus.checksum_mismatch")
            #expect(try await head(client, t, location).headers[.uploadOffset] == "0", "a bad chunk is discarded")

            let sha1 = Data(Insecure.SHA1.hash(data: photo[..<half])).base64EncodedString()
            let first = try await patch(client, t, location, offset: 0, photo[..<half], checksum: "sha1 \(sha1)")
            #expect(first.status == .noContent && first.headers[.uploadOffset] == "\(half)")
            let state = try await head(client, t, location)
            #expect(state.status == .ok && state.headers[.uploadOffset] == "\(half)" && state.headers[.uploadLength] == "\(photo.count)")
            #expect(state.headers[.cacheControl] == "no-store")
            let tooMuch = try await patch(client, t, location, offset: half, photo[half...] + [0, 0, 0])
            #expect(tooMuch.status.code == 413)
            let sha256 = Data(SHA256.hash(data: photo[half...])).base64EncodedString()
            let rest = try await patch(client, t, location, offset: half, photo[half...], checksum: "sha256 \(sha256)")
            #expect(rest.status == .noContent && rest.headers[.uploadOffset] == "\(photo.count)")
            // Every answer, errors included, says which tus it speaks; an upload in progress says when it expires.
            for answer in [created, wrongOffset, wrongType, badSum, first, state, tooMuch, rest] {
                #expect(answer.headers[.tusResumable] == "1.0.0", "\(answer.status)")
            }
            for answer in [created, first, state] {
                let expires = try #require(answer.headers[HTTPField.Name("Upload-Expires")!], "\(answer.status)")
                let date = try #require(Self.httpDate(expires), "\(expires)")
                #expect(date > Date() && date < Date().addingTimeInterval(t.hub.settings.uploadExpirySeconds + 60))
            }
            let imageId = try #require(rest.headers[.uploadImageId])
            await t.drain()
            #expect(try t.hub.catalog.image(id: imageId)?.status == .accepted)

            // Creation-with-upload: the creation carries the first bytes (with a checksum) and answers their offset.
            let second = [UInt8](try Fixtures.image(seed: 612))
            let withBytes = try await client.execute(uri: "/v1/uploads", method: .post, headers: [
                .authorization: t.bearer(.supplier), .tusResumable: "1.0.0", .uploadLength: "\(second.count)",
                HTTPField.Name("Upload-Metadata")!: "label \(Data("Banana".utf8).base64EncodedString())",
                .contentType: "application/offset+octet-stream",
                .uploadChecksum: "sha256 \(Data(SHA256.hash(data: second[..<1000])).base64EncodedString())",
            ], body: ByteBuffer(bytes: Array(second[..<1000])))
            #expect(withBytes.status == .created && withBytes.headers[.uploadOffset] == "1000", "\(withBytes.status)")
            let secondLocation = try #require(withBytes.headers[.location])
            #expect(try await patch(client, t, secondLocation, offset: 1000, second[1000...]).status == .noContent)

            // Sniffed from the first bytes: a GIF is refused at once and the upload is gone.
            let gif = [UInt8](try Fixtures.image(.gif))
            let gifUpload = try #require(try await create(client, t, length: gif.count).headers[.location])
            let refused = try await patch(client, t, gifUpload, offset: 0, gif.prefix(100))
            #expect(refused.status.code == 415)
            #expect(try await head(client, t, gifUpload).status.code == 404)

            // Termination and unknown uploads.
            let doomed = try #require(try await create(client, t, length: 10).headers[.location])
            let deleted = try await client.execute(uri: doomed, method: .delete, headers: [.authorization: t.bearer(.supplier), .tusResumable: "1.0.0"])
            #expect(deleted.status == .noContent)
            #expect(try await head(client, t, doomed).status.code == 404)
            #expect(try await patch(client, t, "/v1/uploads/nope", offset: 0, [1, 2, 3]).status.code == 404)
            // Another supplier's upload is invisible.
            let other = try t.hub.catalog.createUser(name: "other", role: .supplier).key
            let peek = try await client.execute(uri: location, method: .head, headers: [.authorization: "Bearer \(other)", .tusResumable: "1.0.0"])
            #expect(peek.status.code == 404)
        }
    }

    @Test("the PATCH that completes an upload with Prefer: wait=N answers 200 with the verdict and the tus headers; the others 204 as ever")
    func completingPatchWaitsForTheVerdict() async throws {
        let t = try TestHub()
        defer { t.remove() }
        let bytes = Array(try Fixtures.image(.jpeg, seed: 931))
        try await t.withClient { client in
            let location = try #require(try await create(client, t, length: bytes.count).headers[.location])
            func patch(_ offset: Int, _ part: ArraySlice<UInt8>) async throws -> TestResponse {
                try await client.execute(uri: location, method: .patch, headers: [
                    .authorization: t.bearer(.supplier), .tusResumable: "1.0.0", .uploadOffset: "\(offset)",
                    .contentType: "application/offset+octet-stream", HTTPField.Name("Prefer")!: "wait=10",
                ], body: ByteBuffer(bytes: Array(part)))
            }
            let half = bytes.count / 2
            #expect(try await patch(0, bytes[..<half]).status == .noContent, "an upload not yet complete has no verdict to wait for")
            async let last = patch(half, bytes[half...])
            try await waitUntil(seconds: 10) { try t.hub.catalog.backlog() > 0 }
            await t.drain()
            let answer = try await last
            #expect(answer.status == .ok && answer.headers[HTTPField.Name("Preference-Applied")!] == "wait=10")
            #expect(answer.headers[.uploadOffset] == "\(bytes.count)" && answer.headers[.tusResumable] == "1.0.0")
            #expect(answer.json["status"] as? String == "accepted" && answer.json["id"] as? String == answer.headers[.uploadImageId], "\(answer.json)")
        }
    }

    @Test("abandoned uploads expire: 410, then swept with their bytes")
    func expiry() async throws {
        let t = try TestHub { $0.uploadExpirySeconds = 0.2 }
        defer { t.remove() }
        try await t.withClient { client in
            let location = try #require(try await create(client, t, length: 1000).headers[.location])
            _ = try await patch(client, t, location, offset: 0, [UInt8](try Fixtures.image(seed: 3)).prefix(100))
            try await Task.sleep(for: .milliseconds(300))
            let expired = try await head(client, t, location)
            #expect(expired.status.code == 410)
            #expect(try t.hub.uploads.expire() == 1)
            #expect(try FileManager.default.contentsOfDirectory(atPath: t.hub.uploads.directory.path).isEmpty)
        }
    }

    @Test("a PATCH cut mid-body keeps the bytes that arrived, unless it carried a checksum: then it keeps nothing")
    func cutPatches() async throws {
        let t = try TestHub()
        defer { t.remove() }
        let key = t.keys[.supplier]!
        try await t.serving { base in
            let port = base.split(separator: ":").last.map(String.init) ?? "0"
            // Creates an upload of 100 kB, sends 40 kB of a PATCH announcing all of it and drops the connection,
            // then prints the offset the server kept.
            let script = """
                import base64, http.client, socket, sys, time
                checksum = sys.argv[1] == "checksum"
                headers = {"Authorization": "Bearer \(key)", "Tus-Resumable": "1.0.0"}
                c = http.client.HTTPConnection("127.0.0.1", \(port))
                c.request("POST", "/v1/uploads", headers=dict(headers, **{"Upload-Length": "100000",
                          "Upload-Metadata": "label " + base64.b64encode(b"Banana").decode()}))
                r = c.getresponse(); r.read(); location = r.getheader("Location")
                s = socket.create_connection(("127.0.0.1", \(port)))
                head = (f"PATCH {location} HTTP/1.1\\r\\nHost: hub\\r\\nAuthorization: Bearer \(key)\\r\\nTus-Resumable: 1.0.0\\r\\n"
                        "Upload-Offset: 0\\r\\nContent-Type: application/offset+octet-stream\\r\\nContent-Length: 100000\\r\\n")
                if checksum:
                    head += "Upload-Checksum: sha1 " + base64.b64encode(b"x" * 20).decode() + "\\r\\n"
                s.sendall((head + "\\r\\n").encode() + b"\\xff\\xd8\\xff" + b"x" * 40000)
                time.sleep(0.3)
                s.close()
                for _ in range(50):
                    time.sleep(0.1)
                    c.request("HEAD", location, headers=headers)
                    r = c.getresponse(); r.read()
                    if r.status == 200 and r.getheader("Upload-Offset") != "0" or checksum and _ > 10:
                        break
                print(r.getheader("Upload-Offset"))
                """
            for (mode, expected) in [("plain", "40003"), ("checksum", "0")] {
                let (status, output) = try await runProgram(DocsTests.root.appendingPathComponent(".venv/bin/python"), ["-c", script, mode])
                let offset = String(decoding: output, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
                #expect(status == 0 && offset == expected, "\(mode): offset \(offset)")
            }
        }
    }

    @Test("a partial upload survives a restart and resumes from the durable offset")
    func survivesRestart() async throws {
        let t = try TestHub()
        defer { t.remove() }
        let photo = [UInt8](try Fixtures.image(seed: 612))
        let location = try await Application(router: buildRouter(hub: t.hub)).test(.router) { client in
            let location = try #require(try await create(client, t, length: photo.count).headers[.location])
            _ = try await patch(client, t, location, offset: 0, photo.prefix(1000))
            return location
        }
        // A new process on the same data directory.
        let restarted = try Hub(dataDirectory: t.directory, settings: t.hub.settings)
        let app = Application(router: buildRouter(hub: restarted))
        try await app.test(.router) { client in
            let state = try await head(client, t, location)
            #expect(state.headers[.uploadOffset] == "1000")
            let rest = try await patch(client, t, location, offset: 1000, photo[1000...])
            #expect(rest.status == .noContent && rest.headers[.uploadImageId] != nil)
            // The bytes put back together are the original's, byte for byte, and the image ends final.
            let id = try #require(rest.headers[.uploadImageId])
            await restarted.workers.drain()
            let image = try #require(try restarted.catalog.image(id: id))
            #expect(image.sha256 == SHA256.hash(data: photo).map { String(format: "%02x", $0) }.joined())
            #expect(try Data(contentsOf: restarted.blobs.path(for: image.sha256)) == Data(photo))
            #expect(image.status == .accepted)
        }
    }

    @Test("an upload another node is writing is refused with 409 tus.busy until that writer lets go", arguments: TestCatalogs.engines)
    func oneWriterAcrossNodes(engine: CatalogEngine) async throws {
        let t = try TestHub(engine: engine)
        defer { t.remove() }
        let photo = [UInt8](try Fixtures.image(seed: 613))
        try await t.withClient { client in
            let location = try #require(try await create(client, t, length: photo.count).headers[.location])
            #expect(try await patch(client, t, location, offset: 0, photo.prefix(500)).status == .noContent)
            // Another node's PATCH holds the file (the same lock, taken through a descriptor of its own).
            let id = try #require(location.split(separator: "/").last.map(String.init))
            let other = open(t.directory.appendingPathComponent("uploads/\(id)").path, O_WRONLY)
            #expect(other >= 0 && flock(other, LOCK_EX | LOCK_NB) == 0)
            let refused = try await patch(client, t, location, offset: 500, photo[500...])
            #expect(refused.status == .conflict && refused.errorCode == "tus.busy")
            close(other)
            let done = try await patch(client, t, location, offset: 500, photo[500...])
            #expect(done.status == .noContent && done.headers[.uploadImageId] != nil)
        }
    }

    @Test("backpressure: over the high-water mark new uploads get 503 with Retry-After")
    func backpressure() async throws {
        let t = try TestHub { $0.workers = 0; $0.backlogHighWater = 2; $0.retryAfterSeconds = 7 }
        defer { t.remove() }
        try await t.withClient { client in
            for seed in 1...2 {
                let r = try await client.upload(try Fixtures.image(seed: 620 + seed), label: "Banana", as: t.bearer(.supplier))
                #expect(r.status == .accepted)
            }
            let busy = try await client.upload(try Fixtures.image(seed: 630), label: "Banana", as: t.bearer(.supplier))
            #expect(busy.status.code == 503 && busy.errorCode == "backpressure.busy")
            #expect(busy.headers[.retryAfter] == "7")
            let tus = try await create(client, t, length: 100)
            #expect(tus.status.code == 503 && tus.headers[.retryAfter] == "7")
        }
        var settings = t.hub.settings
        settings.workers = 2
        let worker = try Hub(dataDirectory: t.directory, settings: settings)
        await worker.workers.drain()
        try await t.withClient { client in
            let r = try await client.upload(try Fixtures.image(seed: 631), label: "Banana", as: t.bearer(.supplier))
            #expect(r.status == .accepted, "the backlog drained, uploads are admitted again")
        }
    }

    @Test("a real tus client (tuspy) uploads a phone photo, and resumes one whose connection was cut mid-body", needsSharedData)
    func tuspyUploadsAndResumes() async throws {
        let t = try TestHub(labels: ["phones"])
        defer { t.remove() }
        let phones = try SharedData.photos(in: "photos-phone")
        let (status, data) = try await t.serving { url in
            try await runProgram(TrainingTests.root.appendingPathComponent(".venv/bin/python"), [
                TrainingTests.root.appendingPathComponent("scripts/tus_client_check.py").path, url,
                t.keys[.supplier]!, SharedData.url(phones[0]).path, SharedData.url(phones[1]).path, "phones",
            ])
        }
        #expect(status == 0)
        let result = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any], "\(String(decoding: data, as: UTF8.self))")
        print("tuspy: \(result)")
        let sent = result["sent_before_cut"] as! Int, resumedFrom = result["server_offset_after_cut"] as! Int
        #expect(resumedFrom > 64 * 1024 && resumedFrom <= sent, "the server kept the bytes received before the cut")
        await t.drain()
        for key in ["whole_url", "cut_url"] {
            let id = try #require((result[key] as? String)?.split(separator: "/").last.map(String.init))
            let upload = try #require(try t.hub.catalog.resumableUpload(id: id))
            let image = try #require(try upload.imageId.flatMap { try t.hub.catalog.image(id: $0) })
            #expect(image.status == .accepted, "\(key): \(image.reasonCodes)")
        }
    }
}
