import Catalog
import Embedding
import Foundation
import HubTesting
import Imaging
import Jobs
import HubCore
import Testing

/// The embed stage inside a hub, on real photos: semantic duplicates, label checks, clusters, similarity.
@Suite("Embed stage", .serialized, needsSharedData)
struct EmbedStageTests {
    func photos(_ folder: String, _ range: Range<Int>) throws -> [Data] {
        try SharedData.photos(in: "photos/\(folder)")[range].map { try SharedData.data($0) }
    }

    @Test("a resized, re-encoded, cropped copy is a semantic near duplicate; other photos of the class are not")
    func semanticDuplicates() async throws {
        // The perceptual hash is switched off so that only the embedding can find the copy.
        let t = try TestHub(labels: ["dogs"], embeddings: true) { $0.nearDuplicateDistance = -1 }
        defer { t.remove() }
        let dogs = try photos("dogs", 0..<6)
        let image = try Image.load(dogs[0])
        let copy = try image.cropped(left: image.width / 20, top: image.height / 20, width: image.width * 9 / 10, height: image.height * 9 / 10)
            .fitted(longSide: image.width * 2 / 3).encoded(as: .jpeg, quality: 70)
        try await t.withClient { client in
            let original = try await client.upload(dogs[0], label: "dogs", as: t.bearer(.supplier)).json["id"] as! String
            await t.drain()
            var others: [String] = []
            for bytes in dogs.dropFirst() { others.append(try await client.upload(bytes, label: "dogs", as: t.bearer(.supplier)).json["id"] as! String) }
            let copyId = try await client.upload(copy, label: "dogs", as: t.bearer(.supplier)).json["id"] as! String
            await t.drain()
            let flagged = try await client.get("/v1/images/\(copyId)", as: t.bearer(.admin)).json
            #expect(flagged["status"] as? String == "quarantined")
            #expect(flagged["reasons"] as? [String] == ["duplicate.near"])
            #expect(flagged["duplicate_of"] as? String == original)
            for id in others {
                let json = try await client.get("/v1/images/\(id)", as: t.bearer(.admin)).json
                #expect(json["status"] as? String == "accepted", "\(json)")
                #expect((json["tags"] as? [[String: Any]])?.count == 5)
                #expect(json["embedding_model"] as? String == t.hub.embedStage!.backbone.id)
            }
            let stored = try #require(try t.hub.catalog.embedding(imageId: original))
            #expect(stored.vector.count == 1904 * 2, "float16")
        }
    }

    @Test("near duplicates are confirmed by local features: a heavily cropped copy is found below the cosine threshold; distinct photos above it are not flagged",
          arguments: [256, 128])
    func geometricNearDuplicates(thumbnailSide: Int) async throws {
        // Cosine alone would get both cases wrong here: every candidate at 0.5 or more would be a duplicate,
        // and the copy is checked from 0.5 on too. The perceptual hash is off. The glance is taken at the
        // thumbnails (256 pixels) or, where they are smaller than a glance, at the images themselves.
        let t = try TestHub(labels: ["flowers"], embeddings: true) {
            $0.thumbnailSide = thumbnailSide
            $0.nearDuplicateDistance = -1
            $0.nearDuplicateCosine = 0.5
            $0.nearDuplicateCandidateCosine = 0.5
            $0.nearDuplicateMaxCandidates = 10
        }
        defer { t.remove() }
        let flowers = try photos("flowers", 0..<8)
        let image = try Image.load(flowers[0]).autoRotated()
        // 12% off each side, 0.6× the size, quality 60.
        let cx = image.width * 12 / 100, cy = image.height * 12 / 100
        let copy = try image.cropped(left: cx, top: cy, width: image.width - 2 * cx, height: image.height - 2 * cy)
            .fitted(longSide: image.longSide * 6 / 10).encoded(as: .jpeg, quality: 60)
        try await t.withClient { client in
            let original = try await client.upload(flowers[0], label: "flowers", as: t.bearer(.supplier)).json["id"] as! String
            await t.drain()
            var others: [String] = []
            for bytes in flowers.dropFirst() {
                others.append(try await client.upload(bytes, label: "flowers", as: t.bearer(.supplier)).json["id"] as! String)
                await t.drain()
            }
            let copyId = try await client.upload(copy, label: "flowers", as: t.bearer(.supplier)).json["id"] as! String
            await t.drain()
            #expect(t.hub.embedStage!.glancesAtThumbnails == (thumbnailSide >= 256))
            let flagged = try await client.get("/v1/images/\(copyId)", as: t.bearer(.admin)).json
            #expect(flagged["reasons"] as? [String] == ["duplicate.near"], "\(flagged)")
            #expect(flagged["duplicate_of"] as? String == original)
            var similar = 0
            for id in others {
                let json = try await client.get("/v1/images/\(id)", as: t.bearer(.admin)).json
                #expect(!((json["reasons"] as? [String]) ?? []).contains("duplicate.near"), "\(json)")
                similar += json["status"] as? String == "accepted" ? 1 : 0
            }
            #expect(similar >= 5)
        }
    }

    @Test("an upload with the wrong label is quarantined as label.mismatch with the right suggested label")
    func labelMismatch() async throws {
        let t = try TestHub(labels: ["airplanes", "flowers"], embeddings: true) { $0.verifyMinImages = 10 }
        defer { t.remove() }
        let planes = try photos("airplanes", 0..<14), flowers = try photos("flowers", 0..<15)
        // A decoder warning (a JFIF segment of an unknown revision) quarantines a photo whatever its label.
        let warned = Fixtures.withJFIFWarning
        try await t.withClient { client in
            // Quarantined before its label can be judged, a mislabelled photo is judged with the others later.
            let held = try await client.upload(warned(flowers[14]), label: "airplanes", as: t.bearer(.supplier)).json["id"] as! String
            var early: [String] = []
            for i in 0..<12 {
                early.append(try await client.upload(planes[i], label: "airplanes", as: t.bearer(.supplier)).json["id"] as! String)
                early.append(try await client.upload(flowers[i], label: "flowers", as: t.bearer(.supplier)).json["id"] as! String)
            }
            await t.drain()
            // Before a label has enough images, uploads are accepted unverified ...
            let before = try await client.get("/v1/images/\(early[0])", as: t.bearer(.admin)).json
            #expect(before["status"] as? String == "accepted")
            #expect((before["label_check"] as? [String: Any])?["state"] as? String == "unverified")
            // ... and re-checked in the background once it has.
            try t.hub.embedStage!.maintain()
            var verified = 0
            for id in early {
                let json = try await client.get("/v1/images/\(id)", as: t.bearer(.admin)).json
                guard json["status"] as? String == "accepted" else { continue }  // a photo may fail a quality check
                #expect((json["label_check"] as? [String: Any])?["state"] as? String == "verified", "\(json)")
                verified += 1
            }
            #expect(verified >= 20)
            let judged = try await client.get("/v1/images/\(held)", as: t.bearer(.admin)).json
            #expect(judged["status"] as? String == "quarantined" && judged["reasons"] as? [String] == ["decode.warning", "label.mismatch"], "\(judged)")
            #expect((judged["label_check"] as? [String: Any])?["state"] as? String == "mismatch" && judged["suggested_label"] as? String == "flowers")
            let wrong = try await client.upload(flowers[12], label: "airplanes", as: t.bearer(.supplier)).json["id"] as! String
            let right = try await client.upload(planes[12], label: "airplanes", as: t.bearer(.supplier)).json["id"] as! String
            await t.drain()
            let flagged = try await client.get("/v1/images/\(wrong)", as: t.bearer(.admin)).json
            #expect(flagged["status"] as? String == "quarantined", "\(flagged)")
            #expect(flagged["reasons"] as? [String] == ["label.mismatch"])
            #expect(flagged["suggested_label"] as? String == "flowers")
            let check = try #require(flagged["label_check"] as? [String: Any])
            #expect((check["suggested_score"] as! Double) > (check["score"] as! Double))
            // Quarantined for another reason (a decoder warning: a JFIF segment of an unknown revision), a wrong
            // label is named too.
            let both = try await client.upload(warned(flowers[13]), label: "airplanes", as: t.bearer(.supplier)).json["id"] as! String
            await t.drain()
            let twice = try await client.get("/v1/images/\(both)", as: t.bearer(.admin)).json
            #expect(twice["status"] as? String == "quarantined" && twice["reasons"] as? [String] == ["decode.warning", "label.mismatch"], "\(twice)")
            #expect((twice["label_check"] as? [String: Any])?["state"] as? String == "mismatch" && twice["suggested_label"] as? String == "flowers")
            // An honest photo in quarantine for another reason: its label check verified it, and the runner-up it
            // notes is no suggestion (Review offers to relabel it as what it was uploaded as).
            let honest = try await client.upload(warned(planes[13]), label: "airplanes", as: t.bearer(.supplier)).json["id"] as! String
            await t.drain()
            let kept = try await client.get("/v1/images/\(honest)", as: t.bearer(.admin)).json
            #expect(kept["reasons"] as? [String] == ["decode.warning"] && kept["suggested_label"] == nil, "\(kept)")
            #expect((kept["label_check"] as? [String: Any])?["state"] as? String == "verified")
            let (cookie, _) = try await DashboardTests.signIn(client, key: t.keys[.admin]!)
            let (_, review) = try await DashboardTests.page(client, "/review", cookie: cookie)
            #expect(review.contains(#"id="relabel-\#(honest)" name="label" type="text" list="label-names" value="airplanes""#), "\(review)")
            #expect(review.contains(#"id="relabel-\#(both)" name="label" type="text" list="label-names" value="flowers""#))
            let fine = try await client.get("/v1/images/\(right)", as: t.bearer(.admin)).json
            #expect(fine["status"] as? String == "accepted")
            #expect((fine["label_check"] as? [String: Any])?["state"] as? String == "verified")
            #expect(fine["suggested_label"] == nil)
            // The clear swaps among the uploads judged as they came move the prior the check expects, a little
            // (the configured 0.1 counts as ten judgements).
            let metrics = String(decoding: try await client.get("/metrics", as: t.bearer(.requester)).bytes, as: UTF8.self)
            let prior = try #require(metrics.split(separator: "\n").first { $0.hasPrefix("imagehub_label_wrong_prior ") }
                .flatMap { Double($0.split(separator: " ")[1]) }, "\(metrics)")
            #expect(prior > 0.1 && prior < 0.3, "\(prior)")

            // Similar images of an airplane are airplanes.
            let similar = try await client.get("/v1/images/\(right)/similar?k=5", as: t.bearer(.requester)).json
            let labels = (similar["similar"] as? [[String: Any]])?.compactMap { $0["label"] as? String }
            #expect(labels == Array(repeating: "airplanes", count: 5), "\(similar)")
        }
    }

    @Test("clustering a label made of two visually different groups finds them; an odd one out is an outlier")
    func clusters() async throws {
        let t = try TestHub(labels: ["mixed", "dogs"], embeddings: true)
        defer { t.remove() }
        let planes = try photos("airplanes", 0..<10), flowers = try photos("flowers", 0..<10)
        let dogs = try photos("dogs", 0..<15), interior = try photos("interiors", 0..<1)[0]
        try await t.withClient { client in
            var group: [String: String] = [:]
            for (name, set) in [("plane", planes), ("flower", flowers)] {
                for bytes in set { group[try await client.upload(bytes, label: "mixed", as: t.bearer(.supplier)).json["id"] as! String] = name }
            }
            for bytes in dogs { _ = try await client.upload(bytes, label: "dogs", as: t.bearer(.supplier)) }
            let odd = try await client.upload(interior, label: "dogs", as: t.bearer(.supplier)).json["id"] as! String
            await t.drain()

            let json = try await client.get("/v1/labels/mixed/clusters?members=true", as: t.bearer(.requester)).json
            #expect(json["k"] as? Int == 2, "\(json)")
            let clusters = try #require(json["clusters"] as? [[String: Any]])
            let found = Set(clusters.map { Set(($0["members"] as! [String]).map { group[$0]! }) })
            #expect(found == [["plane"], ["flower"]], "each cluster holds one group")
            #expect(clusters.allSatisfy { ($0["representatives"] as! [String]).count == 3 && $0["size"] as? Int == ($0["members"] as! [String]).count })
            #expect(clusters.map { $0["size"] as! Int }.reduce(0, +) == json["image_count"] as? Int)

            let outliers = try await client.get("/v1/labels/dogs/outliers", as: t.bearer(.requester)).json
            let ids = (outliers["outliers"] as? [[String: Any]])?.compactMap { $0["id"] as? String }
            #expect(ids?.first == odd, "\(outliers)")

            // Stored and served again while fresh; the background pass stores every label's clusters.
            try t.hub.embedStage!.maintain()
            #expect(try t.hub.catalog.allLabelClusters().count == 2)
            let small = try TestHub(labels: ["few"], embeddings: true)
            defer { small.remove() }
            try await small.withClient { client in
                let r = try await client.get("/v1/labels/few/clusters", as: small.bearer(.requester))
                #expect(r.status.code == 409 && r.errorCode == "label.too_small")
            }
        }
    }

    @Test("images another backbone embedded are never compared with this one's, and are embedded again in the background")
    func staleEmbeddingsAreEmbeddedAgain() async throws {
        let t = try TestHub(labels: ["dogs"], embeddings: true)
        defer { t.remove() }
        let dogs = try photos("dogs", 0..<4)
        try await t.withClient { client in
            var ids: [String] = []
            for bytes in dogs { ids.append(try await client.upload(bytes, label: "dogs", as: t.bearer(.supplier)).json["id"] as! String) }
            await t.drain()
            let stage = t.hub.embedStage!, catalog = t.hub.catalog
            let before = try #require(try catalog.embedding(imageId: ids[0]))
            #expect(try stage.reembedStale() == 0, "nothing to do while every vector is this backbone's")
            // Two images as hubs with other backbones left them: one with other weights, a vector of the same size
            // (nothing else tells it apart); one from the earlier conversion, the head's 1280 values alone.
            var rng = SeededRandom(seed: 5)
            for (id, (model, size)) in zip(ids.prefix(2), [("efficientnet-lite2/1/test", 1904), ("efficientnet-lite0/1/57934424", 1280)]) {
                var vector = (0..<size).map { _ in Float(rng.next() % 1000) / 1000 - 0.5 }
                Vectors.normalize(&vector)
                try catalog.replaceEmbedding(imageId: id, model: model, vector: Vectors.encode(vector))
            }
            try stage.sync()
            let neighbours = try #require(try stage.similar(to: ids[2], k: 10)).map(\.imageId)
            #expect(Set(neighbours).isDisjoint(with: ids.prefix(2)), "another backbone's vectors are left out: \(neighbours)")
            #expect(try stage.similar(to: ids[0], k: 3) == nil, "an image whose vector is another backbone's has no neighbours yet")
            // The maintenance pass embeds them again from their canonical renditions.
            try stage.maintain()
            #expect(try stage.reembedStale() == 0, "done once")
            for id in ids {
                #expect(try catalog.embedding(imageId: id)?.model == stage.backbone.id)
                #expect(try catalog.image(id: id)?.embeddingModel == stage.backbone.id)
            }
            let after = try #require(try catalog.embedding(imageId: ids[0]))
            let cosine = Vectors.dot(Vectors.decode(before.vector), Vectors.decode(after.vector))
            #expect(cosine > 0.95, "the canonical rendition embeds as the upload did: \(cosine)")
            let again = try #require(try stage.similar(to: ids[2], k: 10)).map(\.imageId)
            #expect(Set(again).isSuperset(of: ids.prefix(2)), "back in the index: \(again)")
        }
    }
}
