import Foundation
import HTTPTypes
import HubCore
import HubServer
import HubTesting
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

/// Every route of the API × every role (no key, each role, and another supplier for what a supplier owns),
/// driven by the router's own route table: a route added without an entry here fails the test.
@Suite("Authorization, route by route", .serialized)
struct AuthorizationTests {
    enum Access {
        /// Anyone, without a key.
        case anyone
        /// These roles (admins always).
        case roles(Set<Role>)
    }

    struct Rule {
        var access: Access
        /// A supplier's own resource: another supplier is answered 404, as if it did not exist.
        var owned = false
    }

    static let all: Set<Role> = [.supplier, .requester, .trainer]
    static let readers: Set<Role> = [.requester, .trainer]
    /// The expected answer of every API route (method and path as the router records them).
    static let table: [String: Rule] = [
        "get /healthz": Rule(access: .anyone),
        "get /metrics": Rule(access: .roles(all)),
        "get /openapi.yaml": Rule(access: .roles(all)),
        "post /v1/images": Rule(access: .roles([.supplier])),
        "get /v1/images": Rule(access: .roles(all)),
        "get /v1/images/:id": Rule(access: .roles(all), owned: true),
        "get /v1/images/:id/similar": Rule(access: .roles(all), owned: true),
        "get /v1/images/:id/canonical": Rule(access: .roles(all), owned: true),
        "get /v1/images/:id/thumbnail": Rule(access: .roles(all), owned: true),
        "get /v1/images/:id/original": Rule(access: .roles([])),
        "post /v1/images/:id/review": Rule(access: .roles([])),
        "options /v1/uploads": Rule(access: .anyone),
        "post /v1/uploads": Rule(access: .roles([.supplier])),
        "head /v1/uploads/:id": Rule(access: .roles([.supplier]), owned: true),
        "patch /v1/uploads/:id": Rule(access: .roles([.supplier]), owned: true),
        "delete /v1/uploads/:id": Rule(access: .roles([.supplier]), owned: true),
        "post /v1/batches": Rule(access: .roles([.supplier])),
        "get /v1/batches/:id": Rule(access: .roles(all), owned: true),
        "get /v1/labels": Rule(access: .roles(all)),
        "post /v1/labels": Rule(access: .roles([])),
        "post /v1/labels/import": Rule(access: .roles([])),
        "get /v1/labels/:name/images": Rule(access: .roles(all)),
        "get /v1/labels/:name/clusters": Rule(access: .roles(readers)),
        "get /v1/labels/:name/outliers": Rule(access: .roles(readers)),
        "get /v1/labels/:name/quality": Rule(access: .roles(all)),
        "get /v1/quests": Rule(access: .roles(all)),
        "get /v1/datasets/export": Rule(access: .roles(readers)),
        "get /v1/datasets/versions/:id": Rule(access: .roles(readers)),
        "get /v1/datasets/versions/:id/export": Rule(access: .roles(readers)),
        "post /v1/training-jobs": Rule(access: .roles([.trainer])),
        "get /v1/training-jobs/:id": Rule(access: .roles(readers)),
        "get /v1/models": Rule(access: .roles(readers)),
        "get /v1/models/:id": Rule(access: .roles(readers)),
        "get /v1/models/:id/report": Rule(access: .roles(readers)),
        "get /v1/models/:id/report.svg": Rule(access: .roles(readers)),
        "get /v1/models/:id/download": Rule(access: .roles(readers)),
        "post /v1/models/:id/predict": Rule(access: .roles(all)),
        "post /v1/watchlist": Rule(access: .roles(readers)),
        "get /v1/watchlist": Rule(access: .roles(readers)),
    ]

    @Test("every API route answers every role as its table entry says; another supplier's resources are not found")
    func everyRouteEveryRole() async throws {
        let t = try TestHub(labels: ["Banana", "Apple"])
        defer { t.remove() }
        let other = try t.hub.catalog.createUser(name: "other supplier", role: .supplier).key
        // The dashboard's pages answer by session (DashboardTests); everything else is the API.
        let routes = routeTable(hub: t.hub).filter { $0.path.hasPrefix("/v1/") || ["/healthz", "/metrics", "/openapi.yaml"].contains($0.path) }
        let missing = routes.map { "\($0.method) \($0.path)" }.filter { Self.table[$0] == nil }
        #expect(missing.isEmpty, "routes without an authorization entry: \(missing)")
        #expect(Set(routes.map { "\($0.method) \($0.path)" }) == Set(Self.table.keys), "table entries without a route")

        try await t.withClient { client in
            // What a supplier owns: an image, a batch, a tus upload in progress.
            let image = try #require(try await client.upload(try Fixtures.image(seed: 4242), label: "Banana", as: t.bearer(.supplier)).json["id"] as? String)
            await t.drain()
            let batch = try #require(try await client.postJSON("/v1/batches", #"{"device":"Pixel 8"}"#, as: t.bearer(.supplier)).json["id"] as? String)
            let created = try await client.execute(uri: "/v1/uploads", method: .post, headers: [
                .authorization: t.bearer(.supplier), HTTPField.Name("Tus-Resumable")!: "1.0.0", HTTPField.Name("Upload-Length")!: "1000",
                HTTPField.Name("Upload-Metadata")!: "label \(Data("Banana".utf8).base64EncodedString())",
            ])
            let upload = try #require(created.headers[.location]?.split(separator: "/").last.map(String.init), "\(created.status)")
            func concrete(_ path: String) -> String {
                path.replacingOccurrences(of: ":name", with: "Banana")
                    .replacingOccurrences(of: "/v1/uploads/:id", with: "/v1/uploads/\(upload)")
                    .replacingOccurrences(of: "/v1/batches/:id", with: "/v1/batches/\(batch)")
                    .replacingOccurrences(of: "/v1/images/:id", with: "/v1/images/\(image)")
                    .replacingOccurrences(of: ":id", with: "unknown-id")
                    + (path == "/v1/images" ? "?ids=\(image)" : path == "/v1/datasets/export" ? "?labels=Banana" : "")
            }
            // Who asks, in an order that leaves the owner's and the admin's state-changing requests for last.
            let askers: [(String, Role?, String?)] = [
                ("no key", nil, nil), ("another supplier", .supplier, "Bearer \(other)"), ("requester", .requester, t.bearer(.requester)),
                ("trainer", .trainer, t.bearer(.trainer)), ("supplier", .supplier, t.bearer(.supplier)), ("admin", .admin, t.bearer(.admin)),
            ]
            var checked = 0
            for (who, role, bearer) in askers {
                for route in routes {
                    let rule = Self.table["\(route.method) \(route.path)"]!
                    var headers: HTTPFields = [HTTPField.Name("Tus-Resumable")!: "1.0.0"]
                    if let bearer { headers[.authorization] = bearer }
                    if route.method == "patch" {
                        headers[.contentType] = "application/offset+octet-stream"
                        headers[HTTPField.Name("Upload-Offset")!] = "0"
                    } else if route.method == "post" {
                        headers[.contentType] = "application/json"
                    }
                    let answer = try await client.execute(uri: concrete(route.path), method: HTTPRequest.Method(route.method.uppercased())!,
                                                          headers: headers, body: route.method == "post" ? ByteBuffer(string: "{}") : nil)
                    let status = answer.status.code
                    let label = "\(who): \(route.method.uppercased()) \(route.path) → \(status)"
                    switch (rule.access, role) {
                    case (.anyone, _):
                        #expect(status != 401 && status != 403, "\(label)")
                    case (.roles, nil):
                        #expect(status == 401 && answer.errorCode == "auth.missing", "\(label)")
                    case (.roles(let allowed), let role?):
                        if role == .admin || allowed.contains(role) {
                            #expect(status != 401 && status != 403, "\(label)")
                            if rule.owned, who == "another supplier" { #expect(status == 404, "\(label): another supplier's") }
                        } else {
                            #expect(status == 403 && answer.errorCode == "auth.forbidden", "\(label)")
                        }
                    }
                    checked += 1
                }
            }
            #expect(checked == routes.count * askers.count)
            // Lists another supplier asks for leave the owner's images out.
            let listed = try await client.get("/v1/images?ids=\(image)", as: "Bearer \(other)").json["images"] as? [Any]
            #expect(listed?.isEmpty == true)
            let page = try await client.get("/v1/labels/Banana/images", as: "Bearer \(other)").json["images"] as? [Any]
            #expect(page?.isEmpty == true)
            let own = try await client.get("/v1/labels/Banana/images", as: t.bearer(.supplier)).json["images"] as? [Any]
            #expect(own?.count == 1)
        }
    }
}
