import Catalog
import Embedding
import Foundation
import HubCore
import Hummingbird
import Ingest
import MultipartKit
import Jobs
import Training
import NIOCore

extension HubRoutes {
    /// The dashboard's pages. They are not part of the JSON API (nor of its OpenAPI document), so they are
    /// registered on the router directly.
    func addDashboardRoutes(to recorder: RouteRecorder) {
        let router = recorder.router

        router.get("/login") { _, context in
            if context.user != nil { return Dashboard.redirect("/") }
            return Dashboard.page("login", title: "Sign in", user: nil, session: nil)
        }

        router.post("/login") { request, context in
            let form = try await Dashboard.form(request)
            let key = (form["key"] ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
            guard !key.isEmpty, let user = try await offload({ try hub.catalog.user(forKey: key) }) else {
                return Dashboard.page("login", title: "Sign in", user: nil, session: nil, status: .unauthorized,
                                      ["error": "That key is not valid. Create one with `imagehub keys create`."])
            }
            let (token, _) = try await offload { try hub.catalog.createSession(for: user, lifetime: Dashboard.lifetime) }
            return Dashboard.redirect("/", setCookie: Dashboard.sessionCookie(token, request: request))
        }

        router.post("/logout") { request, context in
            guard let session = context.session, let token = Dashboard.token(request) else {
                return Dashboard.redirect("/login", setCookie: Dashboard.clearedCookie)
            }
            let form = try await Dashboard.form(request)
            guard form["csrf"] == session.csrf else { return refused(context) }
            try await offload { try hub.catalog.deleteSession(token: token) }
            return Dashboard.redirect("/login", setCookie: Dashboard.clearedCookie)
        }

        router.get("/") { _, context in
            guard let user = context.user else { return Dashboard.redirect("/login") }
            let (counts, reasons, backlog, labels, activity) = try await offload {
                (try hub.catalog.statusCounts(), try hub.catalog.reasonCounts(), try hub.catalog.backlog(), try hub.catalog.labelsById().count,
                 try hub.catalog.activity(minutes: 10))
            }
            let statuses = ImageStatus.allCases.map { ["status": $0.rawValue, "count": counts[$0] ?? 0] }
            let reasonRows = reasons.sorted { ($0.value, $1.key) > ($1.value, $0.key) }.map { ["code": $0.key, "count": $0.value] }
            // Uploads and verdicts per minute, the newest first, as bars (a <meter> needs no inline style).
            let most = max(1, activity.map { max($0.uploads, $0.decided) }.max() ?? 1)
            let clock = DateFormatter()
            clock.locale = Locale(identifier: "en_US_POSIX")
            clock.timeZone = TimeZone(identifier: "UTC")
            clock.dateFormat = "HH:mm"
            let minutes = activity.reversed().enumerated().map { n, m in
                ["minute": clock.string(from: m.minute) + (n == 0 ? " (so far)" : ""), "uploads": m.uploads, "decided": m.decided, "max": most] as [String: Any]
            }
            return Dashboard.page("overview", title: "Overview", user: user, session: context.session, [
                "statuses": statuses, "total": counts.values.reduce(0, +), "backlog": backlog, "labels": labels,
                "reasons": reasonRows, "hasReasons": !reasonRows.isEmpty, "minutes": minutes,
            ])
        }

        router.get("/labels") { request, context in
            guard let user = context.user else { return Dashboard.redirect("/login") }
            let query = (request.uri.queryParameters.get("q") ?? "").trimmingCharacters(in: .whitespaces)
            let tree = try await offload { try hub.catalog.labelTree() }
            var rows: [[String: Any]] = []
            func walk(_ nodes: [LabelNode], depth: Int) {
                for node in nodes {
                    let matches = query.isEmpty || node.name.localizedCaseInsensitiveContains(query)
                        || node.displayName.localizedCaseInsensitiveContains(query)
                    if matches {
                        rows.append(["name": node.name, "displayName": node.displayName, "href": Dashboard.labelHref(node.name),
                                     "indent": query.isEmpty ? depth : 0,
                                     "accepted": node.counts["accepted"] ?? 0, "quarantined": node.counts["quarantined"] ?? 0,
                                     "rejected": node.counts["rejected"] ?? 0, "pending": node.counts["pending"] ?? 0])
                    }
                    walk(node.children, depth: depth + 1)
                }
            }
            walk(tree, depth: 0)
            return Dashboard.page("labels", title: "Labels", user: user, session: context.session,
                                  ["rows": rows, "query": query, "empty": rows.isEmpty, "admin": user.role == .admin])
        }

        router.post("/labels") { request, context in
            guard let user = context.user else { return Dashboard.redirect("/login") }
            // The API's rule: labels are the admin's to make.
            guard user.role == .admin else { return forbidden(context) }
            let form = try await Dashboard.form(request)
            guard let session = context.session, form["csrf"] == session.csrf else { return refused(context) }
            let parent = (form["parent"] ?? "").trimmingCharacters(in: .whitespaces)
            do {
                let label = try await createLabel(name: form["name"] ?? "", displayName: nil, parent: parent.isEmpty ? nil : parent, mid: nil)
                let query = label.name.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""
                return Dashboard.redirect("/labels?q=\(query)")
            } catch let error as HubError where error.status < 500 {
                return Dashboard.page("error", title: "Label not made", user: user, session: context.session, status: .badRequest,
                                      ["message": "\(error.message) (\(error.code))"])
            }
        }

        // The Open Images files, from the admin's disk: the class descriptions and, optionally, the hierarchy.
        router.post("/labels/import") { request, context in
            guard let user = context.user else { return Dashboard.redirect("/login") }
            guard user.role == .admin else { return forbidden(context) }
            struct Files: Decodable { var csrf: String?; var classes: String?; var hierarchy: String? }
            let buffer = try await request.body.collect(upTo: context.maxUploadSize)
            guard let type = request.headers[.contentType], type.lowercased().hasPrefix("multipart/form-data"),
                  let boundary = MultipartUpload.boundary(of: type),
                  let files = try? FormDataDecoder().decode(Files.self, from: buffer, boundary: boundary) else {
                return Dashboard.page("error", title: "Not imported", user: user, session: context.session, status: .badRequest,
                                      ["message": "Choose the class descriptions file (CSV) to import."])
            }
            guard let session = context.session, files.csrf == session.csrf else { return refused(context) }
            do {
                guard let classes = files.classes, !classes.isEmpty else {
                    throw HubError(400, "field.missing", "choose the class descriptions file (CSV)")
                }
                let result = try await importLabels(classes: classes, hierarchy: files.hierarchy)
                return Dashboard.page("imported", title: "Labels imported", user: user, session: context.session,
                                      ["classes": result.classes, "created": result.created, "linked": result.linked])
            } catch let error as HubError where error.status < 500 {
                return Dashboard.page("error", title: "Not imported", user: user, session: context.session, status: .badRequest,
                                      ["message": "\(error.message) (\(error.code))"])
            }
        }

        router.get("/labels/:name") { request, context in
            guard let user = context.user else { return Dashboard.redirect("/login") }
            let raw = try context.parameters.require("name")
            let name = raw.removingPercentEncoding ?? raw
            guard let label = try await offload({ try hub.catalog.label(named: name) }), let labelId = label.id else {
                return Dashboard.page("error", title: "No such label", user: user, session: context.session, status: .notFound,
                                      ["message": "There is no label named “\(name)”."])
            }
            let statusName = request.uri.queryParameters.get("status") ?? "accepted"
            let status = statusName == "all" ? nil : ImageStatus(rawValue: statusName)
            let reason = request.uri.queryParameters.get("reason").flatMap { Dashboard.reasonCodes.contains($0) ? $0 : nil }
            let after = request.uri.queryParameters.get("after")
            let pageSize = 60
            // Suppliers see their own uploads only, as in the API.
            let uploader = user.role.canRead ? nil : user.id
            let images = try await offload {
                try hub.catalog.images(labelIds: [labelId], status: status, reason: reason, uploaderId: uploader, after: after, limit: pageSize)
            }
            let tiles: [[String: Any]] = images.map { image in
                // A section shows for any string, empty or not: keys without a value are left out.
                var tile: [String: Any] = [
                    "id": image.id, "status": image.status.rawValue,
                    "alt": "\(label.displayName), \(image.status.rawValue)\(image.reasonCodes.isEmpty ? "" : " (\(image.reasonCodes.joined(separator: ", ")))")",
                ]
                if !image.reasonCodes.isEmpty { tile["reasons"] = image.reasonCodes.joined(separator: ", ") }
                if image.thumbnailKey != nil { tile["thumbnail"] = "/v1/images/\(image.id)/thumbnail" }
                return tile
            }
            let href = Dashboard.labelHref(label.name)
            let reasonQuery = reason.map { "&reason=\($0)" } ?? ""
            let filters = (["accepted", "quarantined", "rejected", "pending", "all"]).map {
                ["name": $0, "href": "\(href)?status=\($0)\(reasonQuery)", "current": $0 == statusName]
            }
            let reasons: [[String: Any]] = Dashboard.reasonCodes.map { code in
                var option: [String: Any] = ["code": code]
                if code == reason { option["selected"] = true }
                return option
            }
            var values: [String: Any] = ["name": label.name, "displayName": label.displayName, "tiles": tiles, "empty": tiles.isEmpty,
                                         "filters": filters, "status": statusName, "reasonOptions": reasons, "action": href]
            if let reason { values["reason"] = reason }
            if images.count == pageSize, let last = images.last {
                values["next"] = "\(href)?status=\(statusName)\(reasonQuery)&after=\(last.id)"
            }
            // Its clusters with their representatives, and its outliers, as the background pass last stored them
            // (readers only: they span every uploader's images). The first page only: scrolling adds images.
            if user.role.canRead, after == nil, let stored = try await offload({ try hub.catalog.labelClusters(labelId: labelId) }) {
                let clusters = (try? JSONDecoder().decode([Clustering.Cluster].self, from: Data(stored.clusters.utf8))) ?? []
                let outliers = (try? JSONDecoder().decode([Clustering.Outlier].self, from: Data(stored.outliers.utf8))) ?? []
                values["clusters"] = clusters.enumerated().map { n, cluster in
                    ["number": n + 1, "size": cluster.members.count,
                     "representatives": cluster.representatives.prefix(4).map {
                         ["id": $0, "alt": "a representative of cluster \(n + 1) of \(label.displayName)"]
                     }] as [String: Any]
                }
                values["outliers"] = outliers.prefix(12).map {
                    ["id": $0.imageId, "distance": String(format: "%.2f", $0.distance), "alt": "an outlier of \(label.displayName)"]
                }
                values["clustered"] = ["images": stored.imageCount, "at": ISO8601DateFormatter().string(from: stored.computedAt),
                                       "hasOutliers": !outliers.isEmpty] as [String: Any]
            }
            // The quality thresholds this label's photos are held to, and why (as GET /v1/labels/{name}/quality).
            if after == nil {
                let quality = try await offload { try hub.workers.quality.inForce(labelId: labelId) }
                values["hasQuality"] = true
                values["quality"] = quality.thresholds.map { t -> [String: Any] in
                    ["what": "\(t.metric) \(t.bound == "min" ? "at least" : "at most")", "value": String(format: "%.1f", t.value),
                     "global": String(format: "%.1f", t.global), "source": t.source, "why": t.why]
                }
            }
            return Dashboard.page("label", title: label.displayName, user: user, session: context.session, values)
        }

        router.get("/images/:id") { _, context in
            guard let user = context.user else { return Dashboard.redirect("/login") }
            let id = try context.parameters.require("id")
            guard let image = try await offload({ try hub.catalog.image(id: id) }), user.mayRead(ownedBy: image.uploaderId) else {
                return Dashboard.page("error", title: "No such image", user: user, session: context.session, status: .notFound,
                                      ["message": "There is no image \(id) you may see."])
            }
            let labels = try await offload { try hub.catalog.labelsById() }
            let label = labels[image.labelId]
            func number(_ value: Double?, _ format: String = "%.1f") -> String { value.map { String(format: format, $0) } ?? "–" }
            var facts: [(String, String)] = [
                ("status", image.status.rawValue), ("reasons", image.reasonCodes.isEmpty ? "none" : image.reasonCodes.joined(separator: ", ")),
                ("label", label?.displayName ?? "?"), ("format", image.format ?? "–"),
                ("size", image.width.map { "\($0) × \(image.height ?? 0) px" } ?? "–"), ("bytes", "\(image.bytes)"),
                ("sharpness", number(image.sharpness)), ("brightness", number(image.brightness)), ("contrast", number(image.contrast)),
                ("label check", image.labelCheck.map { "\($0)\(image.labelScore.map { String(format: ", score %.2f", $0) } ?? "")" } ?? "–"),
            ]
            if let suggested = image.suggestedLabelId, image.labelCheck == "mismatch" {
                facts.append(("looks like", "\(labels[suggested]?.displayName ?? "?")\(image.suggestedScore.map { String(format: " (%.2f)", $0) } ?? "")"))
            }
            facts += [("device", image.device ?? "–"), ("place", image.lat.map { String(format: "%.5f, %.5f", $0, image.lon ?? 0) } ?? "–"),
                      ("batch", image.batchId ?? "–"), ("captured", image.capturedAt ?? "–"),
                      ("uploaded", ISO8601DateFormatter().string(from: image.createdAt)), ("sha256", image.sha256)]
            var values: [String: Any] = [
                "id": image.id, "label": label?.displayName ?? "?", "status": image.status.rawValue,
                "facts": facts.map { ["name": $0.0, "value": $0.1] },
                "alt": "\(label?.displayName ?? "image"), \(image.status.rawValue)",
            ]
            if let labelName = label?.name { values["labelHref"] = Dashboard.labelHref(labelName) }
            if image.canonicalKey != nil { values["canonical"] = "/v1/images/\(image.id)/canonical" }
            if let original = image.duplicateOf {
                values["original"] = ["href": "/images/\(original)", "src": "/v1/images/\(original)/canonical"]
            }
            // Its nearest accepted images (any label), when the hub embeds; a supplier sees only its own.
            if let stage = hub.embedStage, let neighbours = try? await offload({ try stage.similar(to: image.id, k: 8) }) {
                let shown = try await offload { try hub.catalog.images(ids: neighbours.map(\.imageId)) }
                    .filter { user.mayRead(ownedBy: $0.uploaderId) && $0.thumbnailKey != nil }
                let byId = Dictionary(uniqueKeysWithValues: shown.map { ($0.id, $0) })
                let similar: [[String: Any]] = neighbours.compactMap { n in
                    guard let other = byId[n.imageId] else { return nil }
                    return ["href": "/images/\(other.id)", "src": "/v1/images/\(other.id)/thumbnail",
                            "alt": "\(labels[other.labelId]?.displayName ?? "image"), similarity \(String(format: "%.2f", n.similarity))",
                            "similarity": String(format: "%.2f", n.similarity)]
                }
                if !similar.isEmpty { values["similar"] = similar; values["hasSimilar"] = true }
            }
            return Dashboard.page("image", title: "Image \(image.id.prefix(8))", user: user, session: context.session, values)
        }

        router.get("/upload") { _, context in
            guard let user = context.user else { return Dashboard.redirect("/login") }
            // Uploading is the supplier's part (and the admin's), as `POST /v1/images` has it.
            guard [.admin, .supplier].contains(user.role) else { return forbidden(context) }
            let labels = try await offload { try hub.catalog.labelsById() }.values.sorted { $0.name.lowercased() < $1.name.lowercased() }
            return Dashboard.page("upload", title: "Upload", user: user, session: context.session,
                                  ["labels": labels.map { ["name": $0.name, "displayName": $0.displayName] }])
        }

        router.get("/batches") { _, context in
            guard let user = context.user else { return Dashboard.redirect("/login") }
            // Suppliers see their own batches, devices and places, as the API shows them their own images.
            let mine = user.role.canRead ? nil : user.id
            let (batches, devices, places) = try await offload {
                (try hub.catalog.batchSummaries(uploaderId: mine), try hub.catalog.deviceSummaries(uploaderId: mine),
                 try hub.catalog.places(uploaderId: mine))
            }
            func share(_ value: Double?) -> String { value.map { String(format: "%.0f%%", 100 * $0) } ?? "–" }
            let batchRows: [[String: Any]] = batches.map { b in
                ["id": b.batch.id, "device": b.batch.device ?? "–", "submitted": b.submitted, "accepted": b.accepted,
                 "quarantined": b.quarantined, "rejected": b.rejected, "pending": b.pending, "acceptance": share(b.qualityScore),
                 "created": ISO8601DateFormatter().string(from: b.batch.createdAt)]
            }
            let deviceRows: [[String: Any]] = devices.map { d in
                ["device": d.device.isEmpty ? "(not given)" : d.device, "submitted": d.submitted, "accepted": d.accepted,
                 "quarantined": d.quarantined, "rejected": d.rejected, "acceptance": share(d.acceptance),
                 "sharpness": d.meanSharpness.map { String(format: "%.0f", $0) } ?? "–"]
            }
            var values: [String: Any] = ["batches": batchRows, "devices": deviceRows, "noBatches": batchRows.isEmpty, "noDevices": deviceRows.isEmpty]
            if !places.isEmpty { values["map"] = Dashboard.scatter(places) }
            return Dashboard.page("batches", title: "Batches", user: user, session: context.session, values)
        }

        router.get("/training") { _, context in
            guard let user = context.user else { return Dashboard.redirect("/login") }
            guard [.admin, .trainer].contains(user.role) else { return forbidden(context) }
            let tree = try await offload { try hub.catalog.labelTree() }
            var rows: [[String: Any]] = []
            func walk(_ nodes: [LabelNode]) {
                for node in nodes {
                    let accepted = node.counts["accepted"] ?? 0
                    var row: [String: Any] = ["name": node.name, "displayName": node.displayName, "accepted": accepted]
                    if accepted < hub.settings.trainingMinImages { row["short"] = "needs \(hub.settings.trainingMinImages)" }
                    rows.append(row)
                    walk(node.children)
                }
            }
            walk(tree)
            var values: [String: Any] = ["labels": rows, "minimum": hub.settings.trainingMinImages]
            if hub.training == nil { values["disabled"] = true }
            return Dashboard.page("training", title: "Training", user: user, session: context.session, values)
        }

        router.post("/training") { request, context in
            guard let user = context.user, let userId = user.id else { return Dashboard.redirect("/login") }
            guard [.admin, .trainer].contains(user.role) else { return forbidden(context) }
            let form = try await Dashboard.form(request)
            guard let session = context.session, form["csrf"] == session.csrf else { return refused(context) }
            let labels = form.all("label")
            let request = TrainingRequest(labels: labels, fineTune: form["fine_tune"] == "on" ? true : nil)
            do {
                let training = try trainingService()
                let job = try await offload { try training.submit(request, requesterId: userId) }
                return Dashboard.redirect("/training/\(job.id)")
            } catch let error as HubError where error.status < 500 || error.code == "embedding.disabled" {
                return Dashboard.page("error", title: "Not started", user: user, session: context.session, status: .badRequest,
                                      ["message": "\(error.message) (\(error.code))"])
            }
        }

        router.get("/training/:id") { _, context in
            guard let user = context.user else { return Dashboard.redirect("/login") }
            guard [.admin, .trainer, .requester].contains(user.role) else { return forbidden(context) }
            let id = try context.parameters.require("id")
            guard let job = try await offload({ try hub.catalog.trainingJob(id: id) }) else {
                return Dashboard.page("error", title: "No such training job", user: user, session: context.session, status: .notFound,
                                      ["message": "There is no training job \(id)."])
            }
            var values: [String: Any] = ["id": job.id, "state": job.state.rawValue, "epoch": job.epoch]
            if job.state == .queued || job.state == .running { values["live"] = true }
            if let error = job.error { values["error"] = error }
            if let modelId = job.modelId, let model = try await offload({ try hub.catalog.model(id: modelId) }) {
                if let report = try? TrainingReport(stored: model.report) {
                    var shown: [String: Any] = [
                        "id": model.id, "accuracy": String(format: "%.3f", report.accuracy), "macroF1": String(format: "%.3f", report.macroF1),
                        "images": report.deliveredModelImages ?? report.trainImages, "seconds": String(format: "%.1f", report.trainingSeconds),
                        "svg": "/v1/models/\(model.id)/report.svg", "onnx": "/v1/models/\(model.id)/download?format=onnx",
                        "classes": report.perClass.map { ["label": $0.label, "precision": String(format: "%.3f", $0.precision),
                                                          "recall": String(format: "%.3f", $0.recall), "support": $0.support] },
                    ]
                    if let tuning = report.fineTuning {
                        shown["fineTuning"] = ["linear": String(format: "%.3f", tuning.linearAccuracy), "best": tuning.bestEpoch, "epochs": tuning.epochs,
                                               "kept": tuning.bestEpoch == 0]
                    }
                    values["model"] = shown
                    values["errors"] = report.likelyLabelErrors.prefix(24).map { ["href": "/images/\($0.imageId)", "src": "/v1/images/\($0.imageId)/thumbnail",
                                                                              "id": $0.imageId, "given": $0.givenLabel, "suggested": $0.suggestedLabel,
                                                                              "alt": "given \($0.givenLabel), looks like \($0.suggestedLabel)"] }
                    // One click moves a likely label error to the label it looks like (a review decision: admins).
                    if user.role == .admin { values["canRelabel"] = true; values["back"] = "/training/\(job.id)" }
                    if !report.likelyLabelErrors.isEmpty { values["hasErrors"] = true }
                }
            }
            return Dashboard.page("trainingJob", title: "Training \(job.id.prefix(8))", user: user, session: context.session, values)
        }

        router.get("/quests") { _, context in
            guard let user = context.user else { return Dashboard.redirect("/login") }
            let quests = try await offload { try Quests(catalog: hub.catalog).list { user.mayRead(ownedBy: $0.uploaderId) } }
            let rows: [[String: Any]] = quests.map { q in
                ["label": q.label, "labelHref": Dashboard.labelHref(q.label),
                 "message": q.message, "want": q.want, "reason": q.reason, "examples": q.examples.map { ["id": $0, "label": q.label] }]
            }
            return Dashboard.page("quests", title: "Quests", user: user, session: context.session, ["quests": rows, "none": rows.isEmpty])
        }

        router.get("/models") { _, context in
            guard let user = context.user else { return Dashboard.redirect("/login") }
            guard [.admin, .trainer, .requester].contains(user.role) else { return forbidden(context) }
            let (models, watches, labels) = try await offload { (try hub.catalog.models(), try hub.catalog.watches(), try hub.catalog.labelsById()) }
            // The watch-list: labels that are too short to train on, waiting for enough accepted images.
            let watchRows: [[String: Any]] = watches.map { watch in
                var row: [String: Any] = ["label": labels[watch.labelId]?.displayName ?? "?", "threshold": watch.threshold,
                                          "since": ISO8601DateFormatter().string(from: watch.createdAt)]
                row["fired"] = watch.firedAt.map { ISO8601DateFormatter().string(from: $0) } ?? "not yet"
                if let hook = watch.webhookUrl { row["webhook"] = hook }
                return row
            }
            let rows: [[String: Any]] = models.map { model in
                let labels = (try? JSONDecoder().decode([String].self, from: Data(model.labels.utf8)))?.joined(separator: ", ") ?? model.labels
                return ["id": model.id, "labels": labels, "accuracy": String(format: "%.3f", model.accuracy), "backbone": model.backbone,
                        "job": "/training/\(model.trainingJobId)", "onnx": "/v1/models/\(model.id)/download?format=onnx",
                        "created": ISO8601DateFormatter().string(from: model.createdAt)]
            }
            return Dashboard.page("models", title: "Models", user: user, session: context.session,
                                  ["models": rows, "empty": rows.isEmpty, "watches": watchRows, "noWatches": watchRows.isEmpty])
        }

        router.get("/review") { _, context in
            guard let user = context.user else { return Dashboard.redirect("/login") }
            guard user.role == .admin else { return forbidden(context) }
            let (queue, labels) = try await offload { (try hub.catalog.quarantineQueue(limit: 50), try hub.catalog.labelsById()) }
            // Relabel names a label in a text field; a shared list offers the names (no more than 1000, so
            // that a hub with Open Images' thousands of labels keeps the page light: any name can be typed).
            let labelNames = Array(labels.values.map(\.name).sorted { $0.lowercased() < $1.lowercased() }.prefix(1000))
            var items: [[String: Any]] = []
            var examplesOf: [Int64: [ImageRecord]] = [:]
            for (index, image) in queue.enumerated() {
                let name = labels[image.labelId]?.displayName ?? "?"
                var item: [String: Any] = ["id": image.id, "index": index, "label": name, "reasons": image.reasonCodes.joined(separator: ", "),
                                           "alt": "\(name), quarantined: \(image.reasonCodes.joined(separator: ", "))"]
                if image.thumbnailKey != nil { item["thumbnail"] = "/v1/images/\(image.id)/thumbnail" }
                // Relabel names the label it seems to show where the label check found a mismatch (else the one it
                // was uploaded as): a label check that verified the label still notes the runner-up, which is no
                // suggestion.
                let suggestion = image.labelCheck == "mismatch" ? image.suggestedLabelId : nil
                item["relabelTo"] = labels[suggestion ?? image.labelId]?.name ?? ""
                // The evidence beside it: the original of a duplicate, examples of the label it looks like.
                if let original = image.duplicateOf {
                    item["original"] = ["thumbnail": "/v1/images/\(original)/thumbnail", "alt": "the original it duplicates"]
                }
                if let suggested = suggestion, let label = labels[suggested] {
                    if examplesOf[suggested] == nil {
                        examplesOf[suggested] = try await offload {
                            try hub.catalog.images(labelIds: [suggested], status: .accepted, after: nil, limit: 3)
                        }
                    }
                    let examples = examplesOf[suggested] ?? []
                    item["suggested"] = ["name": label.displayName, "href": Dashboard.labelHref(label.name),
                                         "examples": examples.filter { $0.thumbnailKey != nil }.map {
                                             ["thumbnail": "/v1/images/\($0.id)/thumbnail", "alt": "an accepted image of \(label.displayName)"]
                                         }]
                }
                items.append(item)
            }
            return Dashboard.page("review", title: "Review", user: user, session: context.session,
                                  ["items": items, "empty": items.isEmpty, "count": items.count, "labelNames": labelNames])
        }

        router.post("/review/:id") { request, context in
            guard let user = context.user else { return Dashboard.redirect("/login") }
            guard user.role == .admin else { return forbidden(context) }
            let form = try await Dashboard.form(request)
            guard let session = context.session, form["csrf"] == session.csrf else { return refused(context) }
            let id = try context.parameters.require("id")
            let decision = form["decision"] ?? ""
            guard ["accept", "reject", "relabel"].contains(decision) else {
                return Dashboard.page("error", title: "Not decided", user: user, session: context.session, status: .badRequest,
                                      ["message": "A review decides accept, reject or relabel."])
            }
            if decision == "relabel" {
                guard let name = form["label"], let labelId = try await offload({ try hub.catalog.labelId(named: name) }) else {
                    return Dashboard.page("error", title: "Not relabelled", user: user, session: context.session, status: .unprocessableContent,
                                          ["message": "A relabel names a label that exists."])
                }
                try await decided { _ = try await offload { try hub.catalog.relabel(imageId: id, to: labelId) } }
            } else {
                try await decided { _ = try await offload { try hub.catalog.review(imageId: id, accept: decision == "accept", reason: nil) } }
            }
            // A relabel from another page (a training report's likely label errors) goes back there.
            let next = form["next"].flatMap { $0.hasPrefix("/") && !$0.hasPrefix("//") ? $0 : nil } ?? "/review"
            return Dashboard.redirect(next)
        }

        // Many at once: the images selected in the queue, accepted or rejected together.
        router.post("/review") { request, context in
            guard let user = context.user else { return Dashboard.redirect("/login") }
            guard user.role == .admin else { return forbidden(context) }
            let form = try await Dashboard.form(request)
            guard let session = context.session, form["csrf"] == session.csrf else { return refused(context) }
            guard let decision = form["decision"], ["accept", "reject"].contains(decision) else {
                return Dashboard.page("error", title: "Not decided", user: user, session: context.session, status: .badRequest,
                                      ["message": "Selected images are accepted or rejected together."])
            }
            for id in form.all("id").prefix(200) {
                try await decided { _ = try await offload { try hub.catalog.review(imageId: id, accept: decision == "accept", reason: nil) } }
            }
            return Dashboard.redirect("/review")
        }

        router.get("/assets/app.css") { _, _ in
            Response(status: .ok, headers: Dashboard.headers(type: "text/css; charset=utf-8", cache: "public, max-age=3600"),
                     body: .init(byteBuffer: ByteBuffer(string: DashboardTemplates.css)))
        }
        router.get("/assets/app.js") { _, _ in
            Response(status: .ok, headers: Dashboard.headers(type: "text/javascript; charset=utf-8", cache: "public, max-age=3600"),
                     body: .init(byteBuffer: ByteBuffer(string: DashboardTemplates.script)))
        }

        @Sendable func forbidden(_ context: HubContext) -> Response {
            Dashboard.page("error", title: "Not allowed", user: context.user, session: context.session, status: .forbidden,
                           ["message": "Your role may not open this page (auth.forbidden)."])
        }

        /// Runs a review decision; one another reviewer (or tab) made first, or an image gone meanwhile, is no
        /// error: the page shows what is left.
        @Sendable func decided(_ body: () async throws -> Void) async throws {
            do { try await body() } catch let error as HubError where error.status == 409 || error.status == 404 {}
        }

        @Sendable func refused(_ context: HubContext) -> Response {
            Dashboard.page("error", title: "Refused", user: context.user, session: context.session, status: .forbidden,
                           ["message": "The form was sent without its token (auth.csrf). Reload the page and try again."])
        }
    }
}
