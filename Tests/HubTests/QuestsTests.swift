import Catalog
import Embedding
import Foundation
import HubCore
import HubServer
import HubTesting
import Testing

/// Collection quests: what the newest model is weak at, small clusters and close watch-list thresholds,
/// published at `GET /v1/quests`.
@Suite("Collection quests", .serialized)
struct QuestsTests {
    /// A finished training job whose model's report says what `perClass` and `confusion` say.
    static func model(_ catalog: Catalog, labels: [String], recall: [Double], confusion: [[Int]], createdAt: Date,
                      crossValidated: [[Int]]? = nil) throws -> String {
        let trainer = try catalog.createUser(name: "trainer-\(UUID().uuidString.prefix(6))", role: .trainer).user
        let job = try catalog.createTrainingJob(requesterId: trainer.id!, request: "{}")
        _ = try #require(try catalog.claimTrainingJob(worker: "w", lease: 60))
        let version = try catalog.freezeDatasetVersion(jobId: job.id, labels: labels, images: [])
        let perClass = zip(labels, recall).enumerated().map { i, pair in
            #"{"label":"\#(pair.0)","precision":1,"recall":\#(pair.1),"f1":1,"support":\#(confusion[i].reduce(0, +)),"train_images":40}"#
        }.joined(separator: ",")
        let report = """
            {"labels":\(String(decoding: try JSONEncoder().encode(labels), as: UTF8.self)),"accuracy":0.8,"macro_f1":0.8,"per_class":[\(perClass)],
             "confusion":\(String(decoding: try JSONEncoder().encode(confusion), as: UTF8.self)),"history":[],"best_epoch":1,"epochs_run":1,
             "train_images":80,"validation_images":20,"training_seconds":1,"likely_label_errors":[],"options":{}
             \(crossValidated.map { ",\"cross_validated_confusion\":" + String(decoding: try! JSONEncoder().encode($0), as: UTF8.self) } ?? "")}
            """
        let id = UUID().uuidString.lowercased()
        try catalog.finishTrainingJob(id: job.id, worker: "w", model: ModelRecord(
            id: id, trainingJobId: job.id, labels: "[]", datasetVersionId: version.id, backbone: "test", accuracy: 0.8,
            report: report, head: "{}", createdAt: createdAt), error: nil)
        return id
    }

    @Test("low recall, confused pairs, sparse clusters and close watches become quests; the newest model speaks; suppliers see their own examples")
    func quests() async throws {
        let t = try TestHub(labels: ["Daisy", "Tulip", "Rose"])
        defer { t.remove() }
        let catalog = t.hub.catalog
        let supplier = try #require(try catalog.user(forKey: t.keys[.supplier]!))
        let requester = try #require(try catalog.user(forKey: t.keys[.requester]!))
        let vector = Vectors.encode([1, 0, 0, 0])
        func ids(_ label: String, _ n: Int, by user: UserRecord) throws -> [String] {
            let labelId = try #require(try catalog.labelId(named: label))
            try catalog.insertSyntheticEmbeddedImages(labelId: labelId, uploaderId: user.id!, model: "test", vectors: Array(repeating: vector, count: n))
            return try catalog.newestAccepted(labelId: labelId, limit: 100).map(\.id)
        }
        _ = try ids("Daisy", 10, by: supplier)
        let tulips = try ids("Tulip", 30, by: requester)
        _ = try ids("Rose", 3, by: supplier)
        // The model finds half the daisies and takes the rest for tulips.
        _ = try Self.model(catalog, labels: ["Daisy", "Tulip"], recall: [0.5, 1.0], confusion: [[5, 5], [0, 10]], createdAt: Date().addingTimeInterval(-60))
        // Tulips: a kind the hub has 2 of beside 28 of another.
        let tulipId = try #require(try catalog.labelId(named: "Tulip"))
        let clusters = #"[{"members":\#(String(decoding: try JSONEncoder().encode(Array(tulips[2...])), as: UTF8.self)),"representatives":["\#(tulips[2])"]},"#
            + #"{"members":["\#(tulips[0])","\#(tulips[1])"],"representatives":["\#(tulips[0])"]}]"#
        try catalog.saveLabelClusters(LabelClustersRecord(labelId: tulipId, imageCount: 30, k: 2, silhouette: 0.4, clusters: clusters,
                                                          outliers: "[]", model: "test", computedAt: Date()))
        // Someone waits for 5 roses; 3 are there.
        try catalog.watch(labelId: try #require(try catalog.labelId(named: "Rose")), threshold: 5, webhookUrl: nil, userId: requester.id!)

        try await t.withClient { client in
            let answer = try await client.get("/v1/quests", as: t.bearer(.trainer))
            #expect(answer.status == .ok)
            let quests = try #require(answer.json["quests"] as? [[String: Any]])
            let summary = quests.map { "\($0["label"]!) \($0["reason"]!) \($0["want"]!)" }
            print("quests: \(summary)")
            #expect(summary == ["Daisy model.low_recall 32", "Daisy model.confused 10", "Rose watchlist.near 2", "Tulip cluster.sparse 26"])
            #expect(quests[1]["confused_with"] as? String == "Tulip" && quests[0]["recall"] as? Double == 0.5)
            #expect(quests[3]["examples"] as? [String] == [tulips[0]])
            #expect(quests.allSatisfy { ($0["message"] as? String)?.isEmpty == false && ($0["priority"] as? Double ?? 0) > 0 })

            // A supplier sees only its own uploads among the examples.
            let mine = try #require(try await client.get("/v1/quests", as: t.bearer(.supplier)).json["quests"] as? [[String: Any]])
            #expect(mine.first { $0["label"] as? String == "Tulip" }?["examples"] as? [String] == [])
            #expect((mine.first { $0["label"] as? String == "Daisy" }?["examples"] as? [String])?.isEmpty == false)

            // A newer model that finds the daisies answers for them: their quests are gone.
            _ = try Self.model(catalog, labels: ["Daisy", "Tulip"], recall: [0.95, 1.0], confusion: [[19, 1], [0, 20]], createdAt: Date())
            let after = try #require(try await client.get("/v1/quests", as: t.bearer(.trainer)).json["quests"] as? [[String: Any]])
            #expect(after.map { "\($0["label"]!) \($0["reason"]!)" } == ["Rose watchlist.near", "Tulip cluster.sparse"])
            #expect(try await client.get("/v1/quests", as: nil).status.code == 401)

            // The out-of-fold figures, where a report has them, speak over its few validation images.
            _ = try Self.model(catalog, labels: ["Daisy", "Tulip"], recall: [1.0, 1.0], confusion: [[10, 0], [0, 10]], createdAt: Date().addingTimeInterval(1),
                               crossValidated: [[48, 2], [20, 30]])
            let cv = try #require(try await client.get("/v1/quests", as: t.bearer(.trainer)).json["quests"] as? [[String: Any]])
            #expect(cv.map { "\($0["label"]!) \($0["reason"]!) \($0["want"]!)" }.prefix(2) == ["Tulip model.low_recall 24", "Tulip model.confused 40"])
            #expect(cv.first?["recall"] as? Double == 0.6)
        }
    }
}
