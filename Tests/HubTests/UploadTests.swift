import Foundation
import HummingbirdTesting
import NIOCore
import HTTPTypes
import HubCore
import HubServer
import HubTesting
import Imaging
import Simulator
import Testing

@Suite struct UploadTests {
    @Test("Prefer: wait=N answers with the verdict once the image is final (woken by the commit), 202 past N, nothing changes without it")
    func preferWaitAnswersWithTheVerdict() async throws {
        let t = try TestHub()
        defer { t.remove() }
        try await t.withClient { client in
            func upload(_ seed: Int, prefer: String?) async throws -> TestResponse {
                let body = MultipartBody.upload(try Fixtures.image(seed: seed), label: "Banana", fields: [:], filename: "photo.jpg")
                var headers: HTTPFields = [.authorization: t.bearer(.supplier), .contentType: body.contentType]
                if let prefer { headers[HTTPField.Name("Prefer")!] = prefer }
                return try await client.execute(uri: "/v1/images", method: .post, headers: headers, body: ByteBuffer(bytes: body.closed()))
            }
            // The phone waits; the workers decide meanwhile, and the answer is the image with its verdict.
            async let waited = upload(901, prefer: "respond-async, wait=10")
            try await waitUntil(seconds: 10) { try t.hub.catalog.backlog() > 0 }
            await t.drain()
            let answer = try await waited
            #expect(answer.status == .ok && answer.headers[HTTPField.Name("Preference-Applied")!] == "wait=10")
            #expect(answer.json["status"] as? String == "accepted" && answer.json["label"] as? String == "Banana", "\(answer.json)")
            #expect(t.hub.workers.verdicts.count == 0, "no waiter is left behind")
            // More than 30 s is asked for: 30 are applied.
            async let long = upload(902, prefer: "wait=99")
            try await waitUntil(seconds: 10) { try t.hub.catalog.backlog() > 0 }
            await t.drain()
            #expect(try await long.headers[HTTPField.Name("Preference-Applied")!] == "wait=30")
            // Nobody decides within the second asked for: 202, as without the header.
            let late = try await upload(903, prefer: "wait=1")
            #expect(late.status == .accepted && late.headers[HTTPField.Name("Preference-Applied")!] == nil && late.json["status"] as? String == "pending")
            #expect(t.hub.workers.verdicts.count == 0)
            let plain = try await upload(904, prefer: nil)
            #expect(plain.status == .accepted)
            let unparsable = try await upload(905, prefer: "wait=soon")
            #expect(unparsable.status == .accepted, "a preference the hub does not understand is ignored")
        }
    }

    @Test func everyAllowedFormatIsAccepted() async throws {
        let t = try TestHub()
        defer { t.remove() }
        try await t.withClient { client in
            var ids: [ImageFormat: String] = [:]
            var uploaded: [ImageFormat: Data] = [:]
            for (i, format) in [ImageFormat.jpeg, .png, .webp, .heif].enumerated() {
                uploaded[format] = try Fixtures.image(format, seed: 10 + i * 13)
                let r = try await client.upload(uploaded[format]!, label: "Banana", as: t.bearer(.supplier))
                #expect(r.status == .accepted, "\(format): \(r.json)")
                #expect(r.json["status"] as? String == "pending")
                ids[format] = r.json["id"] as? String
            }
            await t.drain()
            for (format, id) in ids {
                let image = try await client.get("/v1/images/\(id)", as: t.bearer(.supplier)).json
                #expect(image["status"] as? String == "accepted", "\(format): \(image)")
                #expect(image["format"] as? String == format.rawValue)
                #expect(image["width"] as? Int == 640 && image["height"] as? Int == 480)
                let canonical = try await client.get("/v1/images/\(id)/canonical", as: t.bearer(.supplier))
                #expect(canonical.status == .ok)
                #expect(ImageFormat.sniff(canonical.bytes) == .jpeg)
                // A 640 × 480 JPEG needs no change: its own data is its canonical rendition (`JPEGStrip`).
                #expect((canonical.bytes == JPEGStrip.metadataFree(uploaded[format]!)) == (format == .jpeg), "\(format)")
                let etag = try #require(canonical.headers[.eTag])
                let cached = try await client.execute(uri: "/v1/images/\(id)/canonical", method: .get,
                                                      headers: [.authorization: t.bearer(.supplier), .ifNoneMatch: etag])
                #expect(cached.status == .notModified)
                let thumb = try Image.load(try await client.get("/v1/images/\(id)/thumbnail", as: t.bearer(.supplier)).bytes)
                #expect(max(thumb.width, thumb.height) == 256)
            }
        }
    }

    @Test func malformedInputIsRefusedOrRejectedWithItsReasonCode() async throws {
        let t = try TestHub()
        defer { t.remove() }
        let jpeg = try Fixtures.image(.jpeg, width: 1200, height: 900, seed: 3)
        var random = [UInt8](repeating: 0, count: 4096)
        var g = SeededRandom(seed: 46)
        for i in random.indices { random[i] = UInt8.random(in: 0...255, using: &g) }
        // No image format's magic starts with 0x01 (0x42 was "B", and "BM" is BMP's: 1 run in 256 sniffed as BMP).
        random[0] = 0x01
        let svg = Data("<?xml version=\"1.0\"?><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"100\" height=\"100\"><rect width=\"100\" height=\"100\"/></svg>".utf8)
        // Refused synchronously, before anything is stored.
        let refused: [(String, Data, Int, String)] = [
            ("zero bytes", Data(), 400, "format.empty"),
            ("random bytes", Data(random), 415, "format.unsupported"),
            ("SVG", svg, 415, "format.not_allowed"),
            ("PDF", Data("%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n".utf8), 415, "format.not_allowed"),
            ("text named .jpg", Data("hello, I am not a photo at all, whatever my name says".utf8), 415, "format.unsupported"),
            ("GIF", try Fixtures.image(.gif), 415, "format.not_allowed"),
        ]
        // Stored (they start like an allowed image), then rejected by the pipeline.
        var gargabe = Data([0xFF, 0xD8, 0xFF, 0xE0])
        gargabe.append(Data(random))
        let rejected: [(String, Data, String)] = [
            ("truncated JPEG", jpeg.prefix(jpeg.count / 2), "decode.truncated"),
            ("JPEG magic + garbage", gargabe, "decode.corrupt"),
            ("bytes flipped inside the scan", Fixtures.flippedScan(jpeg), "decode.corrupt"),
            ("PNG declaring 50000×50000", try Fixtures.pngDeclaring(width: 50_000, height: 50_000), "size.too_large"),
            ("too small", try Fixtures.image(.png, width: 40, height: 40), "size.too_small"),
        ]
        try await t.withClient { client in
            for (name, bytes, status, code) in refused {
                let r = try await client.upload(bytes, label: "Banana", as: t.bearer(.supplier), filename: "x.jpg")
                #expect(Int(r.status.code) == status, "\(name)")
                #expect(r.errorCode == code, "\(name): \(r.json)")
            }
            var ids: [String: String] = [:]
            for (name, bytes, _) in rejected {
                let r = try await client.upload(bytes, label: "Banana", as: t.bearer(.supplier))
                #expect(r.status == .accepted, "\(name): \(r.json)")
                ids[name] = r.json["id"] as? String
            }
            await t.drain()
            for (name, _, code) in rejected {
                let image = try await client.get("/v1/images/\(ids[name]!)", as: t.bearer(.supplier)).json
                #expect(image["status"] as? String == "rejected", "\(name): \(image)")
                #expect((image["reasons"] as? [String]) == [code], "\(name): \(image)")
            }
            #expect(try await client.get("/healthz", as: nil).status == .ok)
        }
    }

    @Test func badFieldsAreRefusedWithReasonCodes() async throws {
        let t = try TestHub()
        defer { t.remove() }
        let jpeg = try Fixtures.image(seed: 5)
        try await t.withClient { client in
            #expect(try await client.upload(jpeg, label: "Durian", as: t.bearer(.supplier)).errorCode == "label.unknown")
            #expect(try await client.upload(jpeg, label: "Banana", as: t.bearer(.supplier), fields: ["lat": "91", "lon": "0"]).errorCode == "field.invalid")
            #expect(try await client.upload(jpeg, label: "Banana", as: t.bearer(.supplier), fields: ["lat": "10"]).errorCode == "field.invalid")
            #expect(try await client.upload(jpeg, label: "Banana", as: t.bearer(.supplier), fields: ["captured_at": "yesterday"]).errorCode == "field.invalid")
            #expect(try await client.upload(jpeg, label: "Banana", as: t.bearer(.supplier), fields: ["batch": "nope"]).errorCode == "batch.unknown")
            var noFile = MultipartBody()
            noFile.field("label", "Banana")
            let r = try await client.execute(uri: "/v1/images", method: .post,
                                             headers: [.authorization: t.bearer(.supplier), .contentType: noFile.contentType],
                                             body: .init(bytes: noFile.closed()))
            #expect(r.status == .badRequest && r.errorCode == "multipart.missing_file")
            let broken = try await client.execute(uri: "/v1/images", method: .post,
                                                  headers: [.authorization: t.bearer(.supplier), .contentType: "multipart/form-data; boundary=xyz"],
                                                  body: .init(string: "--xyz\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\n\u{FF}\u{D8}"))
            #expect(broken.status == .badRequest)
            let notMultipart = try await client.execute(uri: "/v1/images", method: .post,
                                                        headers: [.authorization: t.bearer(.supplier), .contentType: "image/jpeg"],
                                                        body: .init(bytes: jpeg))
            #expect(notMultipart.errorCode == "multipart.malformed")
            #expect(try t.hub.catalog.statusCounts().values.reduce(0, +) == 0)
        }
    }

    @Test func oversizeBodiesAreCutOffWith413() async throws {
        let t = try TestHub { $0.maxUploadBytes = 100_000 }
        defer { t.remove() }
        let big = try Fixtures.image(.png, width: 800, height: 600, seed: 8)
        #expect(big.count > 100_000)
        try await t.withClient { client in
            let r = try await client.upload(big, label: "Banana", as: t.bearer(.supplier))
            #expect(r.status == .contentTooLarge && r.errorCode == "upload.too_large")
        }
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: t.directory.appendingPathComponent("blobs/tmp").path)
        #expect(leftovers.isEmpty)
    }

    @Test func retriesAreIdempotentAndDuplicatesAreFound() async throws {
        let t = try TestHub()
        defer { t.remove() }
        let original = try Fixtures.image(.jpeg, width: 1024, height: 768, seed: 21)
        let copy = try Image.load(original).fitted(longSide: 700).encoded(as: .jpeg, quality: 70)
        let other = try Fixtures.image(.jpeg, width: 1024, height: 768, seed: 22)
        try await t.withClient { client in
            let first = try await client.upload(original, label: "Banana", as: t.bearer(.supplier))
            #expect(first.status == .accepted)
            let id = first.json["id"] as! String
            #expect(try await client.get("/v1/images/\(id)/canonical", as: t.bearer(.supplier)).errorCode == "image.pending")
            let retry = try await client.upload(original, label: "Banana", as: t.bearer(.supplier))
            #expect(retry.status == .ok && retry.json["id"] as? String == id)
            let otherLabel = try await client.upload(original, label: "Apple", as: t.bearer(.supplier))
            #expect(otherLabel.status == .conflict && otherLabel.errorCode == "duplicate.exact")
            #expect((otherLabel.json["error"] as? [String: Any])?["existing_id"] as? String == id)
            // A second supplier may not see the first one's image, so its copy cannot be acknowledged with it.
            let second = "Bearer " + (try t.hub.catalog.createUser(name: "second-supplier", role: .supplier).key)
            #expect(try await client.get("/v1/images/\(id)", as: second).status != .ok)
            let otherUploader = try await client.upload(original, label: "Banana", as: second)
            #expect(otherUploader.status == .conflict && otherUploader.errorCode == "duplicate.exact",
                    "another uploader's copy is refused, not answered with an image it may not see")
            await t.drain()
            let near = try await client.upload(copy, label: "Banana", as: t.bearer(.supplier)).json["id"] as! String
            let different = try await client.upload(other, label: "Banana", as: t.bearer(.supplier)).json["id"] as! String
            await t.drain()
            let n = try await client.get("/v1/images/\(near)", as: t.bearer(.supplier)).json
            #expect(n["status"] as? String == "quarantined")
            #expect(n["reasons"] as? [String] == ["duplicate.near"])
            #expect(n["duplicate_of"] as? String == id)
            #expect(try await client.get("/v1/images/\(different)", as: t.bearer(.supplier)).json["status"] as? String == "accepted")
            #expect(try t.hub.catalog.jobs(imageId: id).count == 1)
            // An admin may still accept the quarantined copy.
            let reviewed = try await client.postJSON("/v1/images/\(near)/review", #"{"decision":"accept"}"#, as: t.bearer(.admin))
            #expect(reviewed.json["status"] as? String == "accepted")
            let again = try await client.postJSON("/v1/images/\(near)/review", #"{"decision":"accept"}"#, as: t.bearer(.admin))
            #expect(again.status == .conflict)
        }
    }

    @Test func rolesAreEnforced() async throws {
        let t = try TestHub()
        defer { t.remove() }
        let jpeg = try Fixtures.image(seed: 31)
        try await t.withClient { client in
            #expect(try await client.get("/v1/labels", as: nil).status == .unauthorized)
            #expect(try await client.get("/v1/labels", as: "Bearer ihk_wrong").errorCode == "auth.invalid")
            #expect(try await client.upload(jpeg, label: "Banana", as: "Bearer nope").status == .unauthorized)
            #expect(try await client.upload(jpeg, label: "Banana", as: t.bearer(.requester)).status == .forbidden)
            #expect(try await client.get("/v1/datasets/export?labels=Banana", as: t.bearer(.supplier)).status == .forbidden)
            #expect(try await client.postJSON("/v1/labels", #"{"name":"Cherry"}"#, as: t.bearer(.supplier)).status == .forbidden)
            let id = try await client.upload(jpeg, label: "Banana", as: t.bearer(.supplier)).json["id"] as! String
            await t.drain()
            #expect(try await client.get("/v1/images/\(id)/original", as: t.bearer(.supplier)).status == .forbidden)
            let original = try await client.get("/v1/images/\(id)/original", as: t.bearer(.admin))
            #expect(original.bytes == jpeg)
            // Another supplier does not see someone else's image.
            let stranger = try t.hub.catalog.createUser(name: "other", role: .supplier).key
            #expect(try await client.get("/v1/images/\(id)", as: "Bearer \(stranger)").status == .notFound)
            #expect(try await client.get("/v1/images/\(id)", as: t.bearer(.requester)).status == .ok)
            #expect(try await client.get("/healthz", as: nil).status == .ok)
        }
    }

    @Test func batchesCountOutcomesAndScoreQuality() async throws {
        let t = try TestHub()
        defer { t.remove() }
        try await t.withClient { client in
            let batch = try await client.postJSON("/v1/batches", #"{"device":"Pixel 8","lat":52.52,"lon":13.40}"#, as: t.bearer(.supplier))
            #expect(batch.status == .created)
            let id = batch.json["id"] as! String
            let dark = try Image.load(try Fixtures.image(seed: 41)).linear(0.08, 0).encoded(as: .jpeg)
            for bytes in [try Fixtures.image(seed: 42), try Fixtures.image(seed: 43), dark] {
                let r = try await client.upload(bytes, label: "Banana", as: t.bearer(.supplier),
                                                fields: ["batch": id, "device": "Pixel 8", "lat": "52.52", "lon": "13.40"])
                #expect(r.status == .accepted)
            }
            await t.drain()
            let summary = try await client.get("/v1/batches/\(id)", as: t.bearer(.supplier)).json
            #expect(summary["submitted"] as? Int == 3)
            #expect(summary["accepted"] as? Int == 2)
            #expect(summary["quarantined"] as? Int == 1)
            #expect(abs((summary["quality_score"] as? Double ?? 0) - 2.0 / 3.0) < 1e-9)
            let page = try await client.get("/v1/labels/Banana/images?status=quarantined", as: t.bearer(.requester)).json
            let images = page["images"] as? [[String: Any]] ?? []
            #expect(images.count == 1 && (images.first?["reasons"] as? [String] ?? []).contains("quality.too_dark"))
        }
    }
}
