import Foundation
import HubCore
import HubServer
import HubTesting
import Imaging
import Testing

/// The reason codes no other test produces, each provoked for real through the API.
@Suite("Reason codes", .serialized)
struct ReasonCodeTests {
    static func adjusted(_ seed: Int, _ a: Double, _ b: Double) throws -> Data {
        try Image.load(try Fixtures.image(seed: seed)).linear(a, b).encoded(as: .jpeg, quality: 92)
    }

    @Test("quality.overexposed, quality.low_contrast and review.rejected, each on the image's page")
    func qualityAndReview() async throws {
        let t = try TestHub(labels: ["Banana"])
        defer { t.remove() }
        try await t.withClient { client in
            let bright = try #require(try await client.upload(try Self.adjusted(8101, 0.1, 235), label: "Banana", as: t.bearer(.supplier)).json["id"] as? String)
            let flat = try #require(try await client.upload(try Self.adjusted(8102, 0.05, 120), label: "Banana", as: t.bearer(.supplier)).json["id"] as? String)
            await t.drain()
            let b = try await client.get("/v1/images/\(bright)", as: t.bearer(.admin)).json
            #expect(b["status"] as? String == "quarantined" && (b["reasons"] as? [String])?.contains("quality.overexposed") == true, "\(b)")
            let f = try await client.get("/v1/images/\(flat)", as: t.bearer(.admin)).json
            #expect(f["status"] as? String == "quarantined" && (f["reasons"] as? [String])?.contains("quality.low_contrast") == true, "\(f)")
            let rejected = try await client.postJSON("/v1/images/\(flat)/review", #"{"decision":"reject"}"#, as: t.bearer(.admin))
            #expect(rejected.status == .ok)
            let after = try await client.get("/v1/images/\(flat)", as: t.bearer(.admin)).json
            #expect(after["status"] as? String == "rejected" && (after["reasons"] as? [String])?.last == "review.rejected", "\(after)")
        }
    }

    @Test("decode.warning: a JPEG whose only fault is a warning (an unknown JFIF revision) is kept for review; field.missing without a label")
    func decodeWarning() async throws {
        let t = try TestHub(labels: ["Banana"])
        defer { t.remove() }
        let warned = Fixtures.withJFIFWarning(try Fixtures.image(seed: 8104))
        try await t.withClient { client in
            let id = try #require(try await client.upload(warned, label: "Banana", as: t.bearer(.supplier)).json["id"] as? String)
            await t.drain()
            let image = try await client.get("/v1/images/\(id)", as: t.bearer(.admin)).json
            #expect(image["status"] as? String == "quarantined" && image["reasons"] as? [String] == ["decode.warning"], "\(image)")
            let unlabelled = try await client.upload(try Fixtures.image(seed: 8105), label: "", as: t.bearer(.supplier))
            #expect(unlabelled.status.code == 400 && unlabelled.errorCode == "field.missing", "\(unlabelled.json)")
        }
    }

    @Test("image.not_embedded: a rejected image has no neighbours to ask for")
    func notEmbedded() async throws {
        let t = try TestHub(labels: ["Banana"], embeddings: true)
        defer { t.remove() }
        try await t.withClient { client in
            let tiny = try #require(try await client.upload(try Fixtures.image(width: 40, height: 30, seed: 8103), label: "Banana", as: t.bearer(.supplier)).json["id"] as? String)
            await t.drain()
            let similar = try await client.get("/v1/images/\(tiny)/similar", as: t.bearer(.supplier))
            #expect(similar.status.code == 409 && similar.errorCode == "image.not_embedded", "\(similar.json)")
        }
    }
}
