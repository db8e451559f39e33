import Catalog
import Foundation
import HTTPTypes
import HubCore
import HubServer
import HubTesting
import Hummingbird
import HummingbirdTesting
import Imaging
import Jobs
import NIOCore
import Simulator
import Testing

/// Training on demand with real photos: jobs, reports, label errors, predictions and the ONNX export.
@Suite("Training", .serialized, needsSharedData)
struct TrainingTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    func photos(_ folder: String, _ range: Range<Int>) throws -> [Data] {
        try SharedData.photos(in: "photos/\(folder)")[range].map { try SharedData.data($0) }
    }

    /// Uploads, processes, and returns ids by label.
    func populate(_ t: TestHub, _ client: any TestClientProtocol, _ sets: [(String, [Data])]) async throws -> [String: [String]] {
        var ids: [String: [String]] = [:]
        for (label, set) in sets {
            for bytes in set { ids[label, default: []].append(try await client.upload(bytes, label: label, as: t.bearer(.supplier)).json["id"] as! String) }
        }
        await t.drain()
        return ids
    }

    func train(_ t: TestHub, _ client: any TestClientProtocol, _ body: String) async throws -> [String: Any] {
        let submitted = try await client.postJSON("/v1/training-jobs", body, as: t.bearer(.trainer))
        #expect(submitted.status == .accepted, "\(submitted.json)")
        let id = try #require(submitted.json["id"] as? String)
        #expect(submitted.json["state"] as? String == "queued")
        while try t.hub.training!.runNext(worker: "test") {}
        return try await client.get("/v1/training-jobs/\(id)", as: t.bearer(.trainer)).json
    }

    @Test("a training job on two real classes: accuracy, a complete report, a dataset version, predictions, 409 for short labels and for a model of another backbone")
    func trainTwoClasses() async throws {
        let t = try TestHub(labels: ["airplanes", "flowers", "dogs"], embeddings: true)
        defer { t.remove() }
        try await t.withClient { client in
            _ = try await populate(t, client, [("airplanes", try photos("airplanes", 0..<25)), ("flowers", try photos("flowers", 0..<25))])
            let job = try await train(t, client, #"{"labels":["airplanes","flowers"],"seed":3}"#)
            #expect(job["state"] as? String == "succeeded", "\(job)")
            let modelId = try #require(job["model_id"] as? String)
            let metrics = try #require(job["metrics"] as? [[String: Any]])
            #expect(!metrics.isEmpty && metrics.allSatisfy { $0["validation_loss"] is Double })

            let report = try await client.get("/v1/models/\(modelId)/report", as: t.bearer(.requester)).json
            let accuracy = try #require(report["accuracy"] as? Double)
            print("two-class validation accuracy: \(accuracy)")
            #expect(accuracy >= 0.9)
            let confusion = try #require(report["confusion"] as? [[Int]])
            #expect(confusion.count == 2 && confusion.allSatisfy { $0.count == 2 })
            #expect(confusion.flatMap { $0 }.reduce(0, +) == report["validation_images"] as? Int)
            let perClass = try #require(report["per_class"] as? [[String: Any]])
            #expect(perClass.map { $0["label"] as? String } == ["airplanes", "flowers"])
            #expect(perClass.allSatisfy { $0["precision"] is Double && $0["recall"] is Double && $0["f1"] is Double })
            #expect((report["history"] as? [Any])?.count == report["epochs_run"] as? Int)
            #expect((report["best_epoch"] as? Int ?? 0) >= 1 && report["training_seconds"] is Double)
            #expect(report["likely_label_errors"] is [Any])
            let cv = try #require(report["cross_validated_confusion"] as? [[Int]], "every image judged out of fold")
            #expect(cv.flatMap { $0 }.reduce(0, +) == (report["train_images"] as? Int ?? 0) + (report["validation_images"] as? Int ?? 0))

            let svg = try await client.get("/v1/models/\(modelId)/report.svg", as: t.bearer(.requester))
            #expect(svg.headers[.contentType] == "image/svg+xml")
            let text = String(decoding: svg.bytes, as: UTF8.self)
            #expect(text.hasPrefix("<svg") && text.contains("confusion matrix") && text.contains("polyline") && text.contains("flowers"))

            let model = try await client.get("/v1/models/\(modelId)", as: t.bearer(.requester)).json
            let versionId = try #require(model["dataset_version"] as? String)
            let version = try await client.get("/v1/datasets/versions/\(versionId)", as: t.bearer(.requester)).json
            let accepted = try t.hub.catalog.statusCounts()[.accepted] ?? 0
            #expect(version["image_count"] as? Int == accepted)
            #expect((version["images"] as? [Any])?.count == accepted)
            #expect((version["manifest_hash"] as? String)?.count == 64)
            #expect(((try await client.get("/v1/models", as: t.bearer(.requester)).json["models"]) as? [Any])?.count == 1)
            #expect(report["dataset_version"] as? String == versionId)
            let tar = try await client.get("/v1/datasets/versions/\(versionId)/export?format=imagefolder", as: t.bearer(.requester))
            #expect(tar.status == .ok)
            let entries = try untar(tar.bytes)
            #expect(Set(entries.map(\.name)) == Set(((version["images"] as? [[String: Any]]) ?? []).map { "\($0["label"]!)/\($0["id"]!).jpg" }))

            // Predict: the hub's own answer for a photo it has not seen.
            let flower = try photos("flowers", 30..<31)[0]
            let body = MultipartBody.upload(flower, label: "", fields: [:], filename: "x.jpg")
            let predicted = try await client.execute(uri: "/v1/models/\(modelId)/predict", method: .post,
                                                     headers: [.authorization: t.bearer(.requester), .contentType: body.contentType],
                                                     body: ByteBuffer(bytes: body.closed()))
            let predictions = try #require(predicted.json["predictions"] as? [[String: Any]], "\(predicted.json)")
            #expect(predictions.first?["label"] as? String == "flowers")
            #expect(abs(predictions.compactMap { $0["probability"] as? Double }.reduce(0, +) - 1) < 1e-4)

            // A model the hub's earlier backbone trained (another conversion: other features) neither predicts
            // nor exports: 409, not a file whose head does not fit the network.
            let catalog = t.hub.catalog
            let trained = try #require(try catalog.model(id: modelId))
            let earlier = try catalog.createTrainingJob(requesterId: try #require(try catalog.trainingJob(id: trained.trainingJobId)).requesterId,
                                                        request: "{}")
            #expect(try catalog.claimTrainingJob(worker: "test", lease: 60)?.id == earlier.id)
            var old = trained
            (old.id, old.trainingJobId, old.backbone) = (UUID().uuidString.lowercased(), earlier.id, "efficientnet-lite0/1/57934424")
            try catalog.finishTrainingJob(id: earlier.id, worker: "test", model: old, error: nil)
            let stale = try await client.execute(uri: "/v1/models/\(old.id)/predict", method: .post,
                                                 headers: [.authorization: t.bearer(.requester), .contentType: body.contentType],
                                                 body: ByteBuffer(bytes: body.closed()))
            #expect(stale.status.code == 409 && stale.errorCode == "model.backbone_changed", "\(stale.json)")
            let staleExport = try await client.get("/v1/models/\(old.id)/download?format=onnx", as: t.bearer(.requester))
            #expect(staleExport.status.code == 409 && staleExport.errorCode == "model.backbone_changed", "\(staleExport.status)")
            #expect(try await client.get("/v1/models/\(modelId)/download?format=onnx", as: t.bearer(.requester)).status == .ok)

            // Too few images: 409 naming each short label, and the requester goes on the watch-list.
            let short = try await client.postJSON("/v1/training-jobs", #"{"labels":["airplanes","dogs"]}"#, as: t.bearer(.trainer))
            #expect(short.status.code == 409 && short.errorCode == "training.not_enough_images", "\(short.json)")
            #expect(((short.json["error"] as? [String: Any])?["dogs"] as? String) == "0")
            let watches = try await client.get("/v1/watchlist", as: t.bearer(.trainer)).json["watches"] as? [[String: Any]]
            #expect(watches?.contains { $0["label"] as? String == "dogs" && $0["threshold"] as? Int == 10 } == true)
            let unknown = try await client.postJSON("/v1/training-jobs", #"{"labels":["airplanes","zebras"]}"#, as: t.bearer(.trainer))
            #expect(unknown.status.code == 404)
            let supplier = try await client.postJSON("/v1/training-jobs", #"{"labels":["airplanes","flowers"]}"#, as: t.bearer(.supplier))
            #expect(supplier.status.code == 403)
        }
    }

    @Test("flipped training labels show up among the likely label errors")
    func flippedLabelsAreFound() async throws {
        // Label checks off (threshold out of reach) so the flipped uploads are accepted and trained on.
        let t = try TestHub(labels: ["airplanes", "flowers"], embeddings: true) { $0.verifyMinImages = 10_000 }
        defer { t.remove() }
        try await t.withClient { client in
            let ids = try await populate(t, client, [
                ("airplanes", try photos("airplanes", 0..<25) + photos("flowers", 30..<33)),
                ("flowers", try photos("flowers", 0..<25)),
            ])
            let flipped = Set(ids["airplanes"]!.suffix(3))
            let job = try await train(t, client, #"{"labels":["airplanes","flowers"],"seed":5}"#)
            let modelId = try #require(job["model_id"] as? String)
            let report = try await client.get("/v1/models/\(modelId)/report", as: t.bearer(.requester)).json
            let errors = try #require(report["likely_label_errors"] as? [[String: Any]])
            let found = Set(errors.compactMap { $0["image_id"] as? String })
            print("likely label errors: \(errors.count), flipped found: \(flipped.intersection(found).count) of 3")
            #expect(flipped.isSubset(of: found), "\(errors)")
            #expect(errors.filter { flipped.contains($0["image_id"] as! String) }.allSatisfy { $0["suggested_label"] as? String == "flowers" })
        }
    }

    @Test("resized copies a reviewer let through and bursts never cross the training split; the report and the version say so")
    func splitsDoNotLeak() async throws {
        let t = try TestHub(labels: ["airplanes", "flowers"], embeddings: true)
        defer { t.remove() }
        try await t.withClient { client in
            let originals = [("airplanes", try photos("airplanes", 0..<16)), ("flowers", try photos("flowers", 0..<16))]
            let ids = try await populate(t, client, originals)
            // Resized copies (0.7×, re-encoded): the hub quarantines them as near duplicates; a reviewer
            // accepts them anyway, so they are training images joined to their originals.
            var uploaded: [String] = []
            for (label, set) in originals {
                // Copies of accepted photos (a photo quarantined for its own sake would pass its reason on).
                var sources: [Data] = []
                for (id, bytes) in zip(ids[label]!, set) where sources.count < 3 {
                    if try await client.get("/v1/images/\(id)", as: t.bearer(.admin)).json["status"] as? String == "accepted" { sources.append(bytes) }
                }
                for source in sources {
                    let image = try Image.load(source).autoRotated()
                    let copy = try image.resized(width: image.width * 7 / 10, height: image.height * 7 / 10).encoded(as: .jpeg, quality: 80)
                    uploaded.append(try #require(try await client.upload(copy, label: label, as: t.bearer(.supplier)).json["id"] as? String))
                }
            }
            await t.drain()
            var copies: [(original: String, copy: String)] = []
            for copy in uploaded {
                let image = try await client.get("/v1/images/\(copy)", as: t.bearer(.admin)).json
                let original = try #require(image["duplicate_of"] as? String, "\(image)")
                #expect(image["status"] as? String == "quarantined" && ids.values.contains { $0.contains(original) }, "\(image)")
                let reviewed = try await client.postJSON("/v1/images/\(copy)/review", #"{"decision":"accept"}"#, as: t.bearer(.admin))
                #expect(reviewed.status == .ok, "\(reviewed.json)")
                copies.append((original, copy))
            }
            // Bursts: four photos from one phone within 3 s, per label.
            var bursts: [[String]] = []
            for (n, (label, folder)) in [("airplanes", "airplanes"), ("flowers", "flowers")].enumerated() {
                var burst: [String] = []
                for (k, bytes) in try photos(folder, 16..<20).enumerated() {
                    let fields = ["device": "burst-phone-\(n)", "captured_at": "2026-05-0\(n + 1)T10:00:0\(k)Z"]
                    burst.append(try #require(try await client.upload(bytes, label: label, as: t.bearer(.supplier), fields: fields).json["id"] as? String))
                }
                bursts.append(burst)
            }
            await t.drain()

            let job = try await train(t, client, #"{"labels":["airplanes","flowers"],"seed":4,"validation_fraction":0.5}"#)
            let modelId = try #require(job["model_id"] as? String, "\(job)")
            let report = try await client.get("/v1/models/\(modelId)/report", as: t.bearer(.requester)).json
            let split = try #require(report["split"] as? [String: Any], "\(report)")
            print("split: \(split)")
            #expect(split["rule"] as? String == "grouped" && split["crossing_pairs"] as? Int == 0)
            #expect((split["near_duplicate_pairs"] as? Int ?? 0) >= copies.count && (split["burst_pairs"] as? Int ?? 0) >= 12)
            #expect((split["random_split_crossing_pairs"] as? Int ?? 0) > 0 && split["random_split_accuracy"] is Double)

            // The version records each image's side: every copy with its original, every burst on one side.
            let model = try await client.get("/v1/models/\(modelId)", as: t.bearer(.requester)).json
            let version = try await client.get("/v1/datasets/versions/\(model["dataset_version"] as? String ?? "")", as: t.bearer(.requester)).json
            let side = Dictionary(uniqueKeysWithValues: ((version["images"] as? [[String: Any]]) ?? []).map { ($0["id"] as! String, $0["split"] as? String) })
            #expect(side.count == (try t.hub.catalog.statusCounts()[.accepted] ?? 0) && side.values.allSatisfy { $0 == "train" || $0 == "validation" })
            #expect(side.values.count { $0 == "validation" } == report["validation_images"] as? Int)
            for (original, copy) in copies { #expect((side[original] ?? nil) != nil && side[original] == side[copy], "\(original), \(copy)") }
            for burst in bursts {
                let sides = burst.compactMap { side[$0] ?? nil }
                #expect(sides.count == 4 && Set(sides).count == 1, "\(sides)")
            }

            let random = try await client.postJSON("/v1/training-jobs", #"{"labels":["airplanes","flowers"],"split":"halves"}"#, as: t.bearer(.trainer))
            #expect(random.status.code == 400 && random.errorCode == "field.invalid")
        }
    }

    @Test("the exported ONNX file runs in onnxruntime and agrees with the hub's own predictions on real photos (linear head; fine-tuned last block)",
          arguments: [false, true])
    func onnxExportAgreesWithPredict(fineTune: Bool) async throws {
        let t = try TestHub(labels: ["airplanes", "flowers", "dogs"], embeddings: true)
        defer { t.remove() }
        try await t.withClient { client in
            _ = try await populate(t, client, [("airplanes", try photos("airplanes", 0..<15)), ("flowers", try photos("flowers", 0..<15)),
                                               ("dogs", try photos("dogs", 0..<15))])
            let refused = try await client.postJSON("/v1/training-jobs", #"{"labels":["airplanes","flowers"],"fine_tune":true,"fine_tune_epochs":0}"#,
                                                    as: t.bearer(.trainer))
            #expect(refused.status.code == 400 && refused.errorCode == "field.invalid", "\(refused.json)")
            let job = try await train(t, client, #"{"labels":["airplanes","flowers","dogs"],"seed":1"# + (fineTune ? #","fine_tune":true,"fine_tune_epochs":3}"# : "}"))
            let modelId = try #require(job["model_id"] as? String)
            let report = try await client.get("/v1/models/\(modelId)/report", as: t.bearer(.requester)).json
            if fineTune {
                // The report: the fine-tuning's own curves and choice beside the linear head's accuracy on the same split.
                let tuning = try #require(report["fine_tuning"] as? [String: Any], "\(report)")
                #expect(tuning["linear_accuracy"] is Double && tuning["epochs"] as? Int == 3 && (tuning["history"] as? [Any])?.count == 3)
                #expect((0...3).contains(tuning["best_epoch"] as? Int ?? -1) && (tuning["frozen_seconds"] as? Double ?? 0) > 0)
                #expect((tuning["tail"] as? String)?.count == 64)
                // The job's curves run on through the fine-tuning's epochs.
                #expect((job["metrics"] as? [Any])?.count == (report["epochs_run"] as? Int ?? 0) + 3)
            } else {
                #expect(report["fine_tuning"] == nil)
            }
            let download = try await client.get("/v1/models/\(modelId)/download?format=onnx", as: t.bearer(.requester))
            #expect(download.status == .ok)
            let dir = t.directory.appendingPathComponent("onnx-check")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            try download.bytes.write(to: dir.appendingPathComponent("model.onnx"))

            // 24 photos the model has not trained on, through the hub's own preprocessing and predict.
            let images = try photos("airplanes", 20..<28) + photos("flowers", 20..<28) + photos("dogs", 20..<28)
            var inputs = [Float](), expected = [Float]()
            let training = t.hub.training!
            let labels = ["airplanes", "flowers", "dogs"]
            for bytes in images {
                inputs += try t.hub.pipeline.modelInput(for: bytes, spec: t.hub.embedStage!.backbone.input)
                let p = try await training.predict(modelId: modelId, bytes: bytes)
                expected += labels.map { l in p.first { $0.label == l }!.probability }
            }
            try inputs.withUnsafeBytes { try Data($0).write(to: dir.appendingPathComponent("inputs.f32")) }
            try expected.withUnsafeBytes { try Data($0).write(to: dir.appendingPathComponent("expected.f32")) }
            // The photos themselves, for the phone-side recipe the script rebuilds from the model card.
            var files: [String] = []
            for (i, bytes) in images.enumerated() {
                let file = dir.appendingPathComponent("photo-\(i).jpg")
                try bytes.write(to: file)
                files.append(file.path)
            }
            let (status, data) = try await runProgram(Self.root.appendingPathComponent(".venv/bin/python"), [
                Self.root.appendingPathComponent("scripts/onnx_check.py").path, dir.appendingPathComponent("model.onnx").path,
                dir.appendingPathComponent("inputs.f32").path, dir.appendingPathComponent("expected.f32").path, "\(images.count)",
            ] + files)
            #expect(status == 0)
            let result = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any], "\(String(decoding: data, as: UTF8.self))")
            print("onnxruntime check: \(result)")
            #expect(result["labels"] as? [String] == labels)
            #expect(result["top1_agree"] as? Int == images.count)
            #expect((result["max_abs_diff"] as? Double ?? 1) < 1e-4)
            let spec = t.hub.embedStage!.backbone.input
            #expect(result["input_name"] as? String == "image" && result["input_size"] as? Int == spec.size)
            // The phone's model takes the size it was trained at, fixed (the set-up's backbone.onnx takes any).
            let shape = result["input_shape"] as? [Any] ?? []
            #expect(shape.count == 4 && shape[0] as? String == "batch" && shape.dropFirst().map { $0 as? Int } == [3, spec.size, spec.size], "\(shape)")
            #expect(result["output_shape"] as? [Int] == [images.count, 3])
            #expect(result["mean"] as? [Double] == [spec.mean, spec.mean, spec.mean] && result["std"] as? [Double] == [spec.std, spec.std, spec.std])

            // The model card: per-class figures, the dataset version, the preprocessing and the split.
            let card = try #require(result["model_card"] as? [String: Any])
            let model = try await client.get("/v1/models/\(modelId)", as: t.bearer(.requester)).json
            let version = try await client.get("/v1/datasets/versions/\(model["dataset_version"] as? String ?? "")", as: t.bearer(.requester)).json
            #expect(card["labels"] as? [String] == labels && card["model_id"] as? String == modelId)
            let perClass = try #require(card["per_class"] as? [[String: Any]])
            #expect(perClass.map { $0["label"] as? String } == labels)
            #expect(perClass.allSatisfy { $0["recall"] is Double && $0["precision"] is Double && ($0["train_images"] as? Int ?? 0) > 0 })
            let cardVersion = try #require(card["dataset_version"] as? [String: Any])
            #expect(cardVersion["id"] as? String == version["id"] as? String && cardVersion["manifest_hash"] as? String == version["manifest_hash"] as? String)
            let pre = try #require(card["preprocessing"] as? [String: Any])
            #expect(pre["short_side"] as? Int == spec.resize && pre["crop_size"] as? Int == spec.size)
            #expect((card["split"] as? [String: Any])?["rule"] as? String == "grouped" && card["backbone"] as? String == t.hub.embedStage!.backbone.id)
            #expect((card["head"] as? String)?.contains("fine-tuned") == fineTune)
            // A phone following the card with Pillow + numpy gets the hub's answers.
            let agree = result["recipe_top1_agree"] as? Int ?? 0, diff = result["recipe_mean_abs_diff"] as? Double ?? 1
            print("phone-side recipe: top-1 agrees on \(agree) of \(images.count), mean |Δp| \(diff), max \(result["recipe_max_abs_diff"] ?? "-")")
            #expect(agree >= images.count - 1 && diff < 0.01)
        }
    }
}

/// The watch-list fires once when a label reaches its threshold, to a local receiver.
@Suite("Watch-list", .serialized)
struct WatchlistTests {
    actor Received { var bodies: [String] = []; func add(_ s: String) { bodies.append(s) } }

    @Test("a webhook fires exactly once at the threshold; private hosts are refused unless allowed")
    func webhookFiresOnce() async throws {
        let received = Received()
        let router = Router()
        router.post("/hook") { request, _ -> HTTPResponse.Status in
            let body = try await request.body.collect(upTo: 1 << 20)
            await received.add(String(buffer: body))
            return .ok
        }
        try await serving({ listening in
            Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
                        onServerRunning: { await listening($0.localAddress?.port ?? 0) })
        }) { base in try await watchAndUpload(hook: base + "/hook", received: received) }
    }

    actor Attempts {
        var times: [Date] = []
        func next() -> Int { times.append(Date()); return times.count }
    }

    @Test("a receiver that answers 500, then times out, then succeeds: retried with growing delays, every attempt recorded")
    func webhookRetries() async throws {
        let attempts = Attempts()
        let router = Router()
        router.post("/hook") { _, _ -> HTTPResponse.Status in
            switch await attempts.next() {
            case 1: return .internalServerError
            case 2: try await Task.sleep(for: .seconds(3)); return .ok  // past webhooks.timeoutSeconds
            default: return .ok
            }
        }
        try await serving({ listening in
            Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
                        onServerRunning: { await listening($0.localAddress?.port ?? 0) })
        }) { base in
            let t = try TestHub(labels: ["Banana"]) {
                $0.webhookAllowedHosts = ["127.0.0.1"]
                $0.backoffSeconds = 0.4
                $0.webhookTimeoutSeconds = 0.5
                $0.webhookMaxAttempts = 5
            }
            defer { t.remove() }
            let requester = try #require(try t.hub.catalog.user(forKey: t.keys[.requester]!))
            let watch = try t.hub.catalog.watch(labelId: try #require(try t.hub.catalog.labelId(named: "Banana")), threshold: 1,
                                                webhookUrl: base + "/hook", userId: requester.id!)
            try await t.withClient { client in
                _ = try await client.upload(try Fixtures.image(seed: 8301), label: "Banana", as: t.bearer(.supplier))
                await t.drain()
            }
            let deadline = ContinuousClock.now + .seconds(20)
            while ContinuousClock.now < deadline, try t.hub.catalog.deliveries(watchId: watch.id!).first?.state != .delivered {
                try await t.hub.webhooks.run()
                try await Task.sleep(for: .milliseconds(50))
            }
            let delivery = try #require(try t.hub.catalog.deliveries(watchId: watch.id!).first)
            #expect(delivery.state == .delivered && delivery.attempts == 3 && delivery.responseStatus == 200, "\(delivery)")
            let times = await attempts.times
            #expect(times.count == 3)
            if times.count == 3 {
                // Backoff 0.4 s after the first failure, 0.8 s after the second (which itself waited 0.5 s).
                let first = times[1].timeIntervalSince(times[0]), second = times[2].timeIntervalSince(times[1])
                print("webhook attempts \(first) s and \(second) s apart")
                #expect(first >= 0.4 && second >= 0.5 + 0.8 && second > first)
            }
        }
    }

    @Test("with `*`, hosts resolving to loopback, private, link-local or unique-local addresses are refused through the resolver")
    func publicHostsOnly() throws {
        var settings = HubSettings()
        settings.webhookAllowedHosts = ["*"]
        let t = try TestHub(labels: [])
        defer { t.remove() }
        let webhooks = Webhooks(catalog: t.hub.catalog, settings: settings)
        for refused in ["http://localhost/hook", "http://127.0.0.1/hook", "http://10.1.2.3/x", "http://172.16.0.9/x", "http://192.168.1.1/x",
                        "http://169.254.169.254/latest/meta-data", "http://100.64.0.1/x", "http://[::1]/x", "http://[fd00::1]/x",
                        "http://[fe80::1]/x", "http://[::ffff:10.0.0.1]/x", "http://0.0.0.0/x"] {
            #expect(throws: HubError.self, "\(refused)") { try webhooks.check(refused) }
        }
        #expect(try webhooks.check("https://93.184.216.34/hook").host == "93.184.216.34")
        #expect(try webhooks.check("https://[2606:2800:220:1::1]/hook").host != nil)
        #expect(throws: HubError.self) { try webhooks.check("ftp://93.184.216.34/") }
    }

    func watchAndUpload(hook: String, received: Received) async throws {
        let t = try TestHub(labels: ["Banana"]) { $0.webhookAllowedHosts = ["127.0.0.1"] }
        defer { t.remove() }
        try await t.withClient { client in
            let refused = try await client.postJSON("/v1/watchlist", #"{"label":"Banana","threshold":3,"webhook_url":"http://10.1.2.3/x"}"#, as: t.bearer(.requester))
            #expect(refused.status.code == 400 && refused.errorCode == "webhook.host_not_allowed")
            let bad = try await client.postJSON("/v1/watchlist", #"{"label":"Banana","threshold":3,"webhook_url":"ftp://127.0.0.1/x"}"#, as: t.bearer(.requester))
            #expect(bad.errorCode == "webhook.invalid_url")
            let made = try await client.postJSON("/v1/watchlist", "{\"label\":\"Banana\",\"threshold\":3,\"webhook_url\":\"\(hook)\"}", as: t.bearer(.requester))
            #expect(made.status == .created, "\(made.json)")
            for seed in 1...2 { _ = try await client.upload(try Fixtures.image(seed: 900 + seed), label: "Banana", as: t.bearer(.supplier)) }
            await t.drain()
            try await t.hub.workers.maintainOnce()
            #expect(await received.bodies.isEmpty, "two accepted images: below the threshold")
            for seed in 3...5 { _ = try await client.upload(try Fixtures.image(seed: 900 + seed), label: "Banana", as: t.bearer(.supplier)) }
            await t.drain()
            try await t.hub.workers.maintainOnce()
            try await t.hub.workers.maintainOnce()
            let bodies = await received.bodies
            #expect(bodies.count == 1, "fires once: \(bodies)")
            let notice = try JSONSerialization.jsonObject(with: Data(bodies.first?.utf8 ?? "{}".utf8)) as? [String: Any]
            #expect(notice?["event"] as? String == "label.threshold_reached" && notice?["label"] as? String == "Banana")
            #expect((notice?["accepted"] as? Int ?? 0) >= 3)
            let watches = try await client.get("/v1/watchlist", as: t.bearer(.requester)).json["watches"] as? [[String: Any]]
            let deliveries = watches?.first?["deliveries"] as? [[String: Any]]
            #expect(deliveries?.count == 1 && deliveries?.first?["state"] as? String == "delivered" && deliveries?.first?["response_status"] as? Int == 200)
        }
    }
}
