import Catalog
import Foundation
import HTTPTypes
import HubCore
import HubServer
import HubTesting
import Imaging
import Hummingbird
import HummingbirdTesting
import Testing

/// The web dashboard over HTTP: signing in and out, the session cookie, CSRF, escaping, the pages' content
/// and the roles the session carries.
@Suite("Dashboard")
struct DashboardTests {
    static let setCookie = HTTPField.Name.setCookie

    /// Signs in with `key`; the session cookie ("name=token") and the answer.
    static func signIn(_ client: any TestClientProtocol, key: String, headers extra: HTTPFields = [:]) async throws -> (cookie: String?, response: TestResponse) {
        var headers = extra
        headers[.contentType] = "application/x-www-form-urlencoded"
        let body = "key=" + (key.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? key)
        let response = try await client.execute(uri: "/login", method: .post, headers: headers, body: ByteBuffer(string: body))
        let cookie = response.headers[setCookie]?.split(separator: ";").first.map(String.init)
        return (cookie, response)
    }

    static func page(_ client: any TestClientProtocol, _ uri: String, cookie: String?) async throws -> (TestResponse, String) {
        var headers = HTTPFields()
        if let cookie { headers[.cookie] = cookie }
        let response = try await client.execute(uri: uri, method: .get, headers: headers)
        return (response, String(buffer: response.body))
    }

    /// A photo and a resized, recompressed copy of it that the perceptual hash calls a near duplicate.
    static func photoAndNearCopy(seed: Int) throws -> (original: Data, copy: Data) {
        let original = try Fixtures.image(.jpeg, width: 1024, height: 768, seed: seed)
        return (original, try Image.load(original).fitted(longSide: 700).encoded(as: .jpeg, quality: 70))
    }

    /// The CSRF token a page's sign-out form carries.
    static func csrf(in html: String) -> String? {
        guard let range = html.range(of: #"name="csrf" value=""#) else { return nil }
        return String(html[range.upperBound...].prefix { $0 != "\"" })
    }

    @Test("a visitor is sent to sign in; a wrong key is refused; a right one gets an HttpOnly, SameSite=Strict session cookie")
    func signIn() async throws {
        let t = try TestHub()
        defer { t.remove() }
        try await t.withClient { client in
            let (home, _) = try await Self.page(client, "/", cookie: nil)
            #expect(home.status == .seeOther && home.headers[.location] == "/login")
            let (login, html) = try await Self.page(client, "/login", cookie: nil)
            #expect(login.status == .ok && html.contains(#"name="key""#) && html.contains(#"<label for="key">"#))
            #expect(login.headers[HTTPField.Name("Content-Security-Policy")!]?.hasPrefix("default-src 'self'") == true)
            let (noCookie, refused) = try await Self.signIn(client, key: "ihk_not-a-key")
            #expect(refused.status == .unauthorized && noCookie == nil)
            #expect(String(buffer: refused.body).contains("That key is not valid"))

            let (cookie, signedIn) = try await Self.signIn(client, key: t.keys[.admin]!)
            #expect(signedIn.status == .seeOther && signedIn.headers[.location] == "/")
            let header = signedIn.headers[Self.setCookie] ?? ""
            #expect(header.contains("HttpOnly") && header.contains("SameSite=Strict") && header.contains("Path=/") && !header.contains("Secure"))
            let (overview, body) = try await Self.page(client, "/", cookie: cookie)
            #expect(overview.status == .ok && body.contains("<h1>Overview</h1>") && body.contains("test-admin"))
            // Behind a TLS proxy the cookie is Secure.
            let (_, proxied) = try await Self.signIn(client, key: t.keys[.admin]!, headers: [HTTPField.Name("X-Forwarded-Proto")!: "https"])
            #expect(proxied.headers[Self.setCookie]?.contains("; Secure") == true)
        }
    }

    @Test("signed in: the overview counts images by status and reason, labels are listed, a label's grid shows its thumbnails")
    func pages() async throws {
        let t = try TestHub()
        defer { t.remove() }
        try await t.withClient { client in
            var ids: [String] = []
            for seed in [301, 302] {
                ids.append(try await client.upload(try Fixtures.image(seed: seed), label: "Banana", as: t.bearer(.supplier)).json["id"] as! String)
            }
            _ = try await client.upload(try Fixtures.flatPNG(width: 640, height: 480, value: 128), label: "Banana", as: t.bearer(.supplier))
            await t.drain()
            let (cookie, _) = try await Self.signIn(client, key: t.keys[.admin]!)
            let (_, overview) = try await Self.page(client, "/", cookie: cookie)
            #expect(overview.contains(#"<span class="n">2</span><span>accepted</span>"#), "\(overview)")
            #expect(overview.contains("<code>quality.blurry</code>"))
            let (_, labels) = try await Self.page(client, "/labels", cookie: cookie)
            #expect(labels.contains(#"<a href="/labels/Banana">Banana</a>"#) && labels.contains(#"<a href="/labels/Apple">Apple</a>"#))
            let (_, found) = try await Self.page(client, "/labels?q=ban", cookie: cookie)
            #expect(found.contains("/labels/Banana") && !found.contains("/labels/Apple"))
            let (_, grid) = try await Self.page(client, "/labels/Banana", cookie: cookie)
            for id in ids { #expect(grid.contains(#"<img src="/v1/images/\#(id)/thumbnail""#)) }
            // The thumbnails load with the session cookie alone, through the API's own route and rules.
            let (thumbnail, _) = try await Self.page(client, "/v1/images/\(ids[0])/thumbnail", cookie: cookie)
            #expect(thumbnail.status == .ok && thumbnail.headers[.contentType] == "image/jpeg")
            let (_, all) = try await Self.page(client, "/labels/Banana?status=all", cookie: cookie)
            #expect(all.contains("quality.blurry") && ids.allSatisfy { all.contains($0) })
            #expect(!grid.contains("quarantined · "), "the grid opens on accepted images")
            let (missing, _) = try await Self.page(client, "/labels/Cherry", cookie: cookie)
            #expect(missing.status == .notFound)

            // Filtered by reason too; the filter keeps the status, and an unknown code is no filter.
            let (_, blurry) = try await Self.page(client, "/labels/Banana?status=all&reason=quality.blurry", cookie: cookie)
            #expect(blurry.contains(#"<span class="caption">quarantined · quality.low_contrast, quality.blurry</span>"#) && !ids.contains { blurry.contains($0) })
            #expect(blurry.contains(#"<option value="quality.blurry" selected>"#))
            let (_, none) = try await Self.page(client, "/labels/Banana?status=accepted&reason=duplicate.near", cookie: cookie)
            #expect(none.contains("No accepted images with reason duplicate.near."))
            let (_, odd) = try await Self.page(client, "/labels/Banana?status=all&reason=%27%20OR%201%3D1", cookie: cookie)
            #expect(ids.allSatisfy { odd.contains($0) })

            // Uploads and verdicts per minute: three uploads, three verdicts, all within the last minutes shown.
            let minutes = try t.hub.catalog.activity(minutes: 10)
            #expect(minutes.map(\.uploads).reduce(0, +) == 3 && minutes.map(\.decided).reduce(0, +) == 3)
            #expect(overview.contains("<h2>Per minute") && overview.contains(#"aria-label="uploads at "#))
            #expect(overview.components(separatedBy: "<meter ").count - 1 == 2 * minutes.count)

            // The label's clusters with representatives, and its outliers, as the background pass stored them.
            let banana = try #require(try t.hub.catalog.labelId(named: "Banana"))
            try t.hub.catalog.saveLabelClusters(LabelClustersRecord(
                labelId: banana, imageCount: 2, k: 1, silhouette: 0,
                clusters: #"[{"members": ["\#(ids[0])", "\#(ids[1])"], "representatives": ["\#(ids[0])"]}]"#,
                outliers: #"[{"imageId": "\#(ids[1])", "distance": 0.42}]"#, model: "test", computedAt: Date()))
            let (_, clustered) = try await Self.page(client, "/labels/Banana", cookie: cookie)
            #expect(clustered.contains("cluster 1 · 2 images") && clustered.contains(#"<a href="/images/\#(ids[0])"><img src="/v1/images/\#(ids[0])/thumbnail" alt="a representative of cluster 1"#))
            #expect(clustered.contains(#"<h3>Outliers</h3>"#) && clustered.contains(#"title="distance 0.42""#))
            let (supplier, _) = try await Self.signIn(client, key: t.keys[.supplier]!)
            let (_, theirs) = try await Self.page(client, "/labels/Banana", cookie: supplier)
            #expect(!theirs.contains("<h2>Clusters"), "clusters span every uploader's images: readers only")
        }
    }

    @Test("a session's state-changing requests need its CSRF token: the API answers 403 auth.csrf without it, and so does sign-out")
    func csrf() async throws {
        let t = try TestHub()
        defer { t.remove() }
        try await t.withClient { client in
            let (cookie, _) = try await Self.signIn(client, key: t.keys[.admin]!)
            let (_, html) = try await Self.page(client, "/", cookie: cookie)
            let token = try #require(Self.csrf(in: html))
            let body = ByteBuffer(string: #"{"name":"Cherry"}"#)
            let forged = try await client.execute(uri: "/v1/labels", method: .post,
                                                  headers: [.cookie: cookie!, .contentType: "application/json"], body: body)
            #expect(forged.status == .forbidden && forged.errorCode == "auth.csrf")
            let made = try await client.execute(uri: "/v1/labels", method: .post,
                                                headers: [.cookie: cookie!, .contentType: "application/json", HTTPField.Name("X-CSRF-Token")!: token],
                                                body: body)
            #expect(made.status == .created, "\(String(buffer: made.body))")
            // Reads need no token.
            let (listed, _) = try await Self.page(client, "/v1/labels", cookie: cookie)
            #expect(listed.status == .ok)
            let form: HTTPFields = [.cookie: cookie!, .contentType: "application/x-www-form-urlencoded"]
            let noToken = try await client.execute(uri: "/logout", method: .post, headers: form, body: ByteBuffer(string: "csrf=wrong"))
            #expect(noToken.status == .forbidden)
            let out = try await client.execute(uri: "/logout", method: .post, headers: form, body: ByteBuffer(string: "csrf=\(token)"))
            #expect(out.status == .seeOther && out.headers[.location] == "/login")
            #expect(out.headers[Self.setCookie]?.contains("Max-Age=0") == true)
            let (after, _) = try await Self.page(client, "/", cookie: cookie)
            #expect(after.status == .seeOther, "the session is gone")
            let (api, _) = try await Self.page(client, "/v1/labels", cookie: cookie)
            #expect(api.status == .unauthorized && api.errorCode == "auth.session_expired")
        }
    }

    @Test("a label named <script>alert(1)</script> renders inert")
    func escaping() async throws {
        let name = "<script>alert(1)</script>"
        let t = try TestHub(labels: ["Banana", name])
        defer { t.remove() }
        try await t.withClient { client in
            _ = try await client.upload(try Fixtures.image(seed: 311), label: name, as: t.bearer(.supplier))
            await t.drain()
            let (cookie, _) = try await Self.signIn(client, key: t.keys[.admin]!)
            let (_, labels) = try await Self.page(client, "/labels", cookie: cookie)
            #expect(!labels.contains(name) && labels.contains("&lt;script&gt;alert(1)&lt;/script&gt;"))
            let href = "/labels/" + name.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
            let (page, html) = try await Self.page(client, href, cookie: cookie)
            #expect(page.status == .ok && !html.contains(name) && html.contains("&lt;script&gt;"))
            #expect(html.components(separatedBy: "<script").count == 2, "the layout's own script tag only")
        }
    }

    @Test("a supplier's session sees its own uploads only and may do what its key may: the API's rules, not a second set")
    func supplierSession() async throws {
        let t = try TestHub()
        defer { t.remove() }
        try await t.withClient { client in
            let own = try await client.upload(try Fixtures.image(seed: 321), label: "Banana", as: t.bearer(.supplier)).json["id"] as! String
            let other = try await client.upload(try Fixtures.image(seed: 322), label: "Banana", as: t.bearer(.admin)).json["id"] as! String
            await t.drain()
            let (cookie, _) = try await Self.signIn(client, key: t.keys[.supplier]!)
            let (_, grid) = try await Self.page(client, "/labels/Banana", cookie: cookie)
            #expect(grid.contains(own) && !grid.contains(other))
            let (_, html) = try await Self.page(client, "/", cookie: cookie)
            let token = try #require(Self.csrf(in: html))
            let (theirs, _) = try await Self.page(client, "/v1/images/\(other)/thumbnail", cookie: cookie)
            #expect(theirs.status == .forbidden || theirs.status == .notFound)
            let refused = try await client.execute(uri: "/v1/labels", method: .post,
                                                   headers: [.cookie: cookie!, .contentType: "application/json", HTTPField.Name("X-CSRF-Token")!: token],
                                                   body: ByteBuffer(string: #"{"name":"Cherry"}"#))
            #expect(refused.status == .forbidden && refused.errorCode == "auth.forbidden")
        }
    }

    @Test("Review: the quarantine queue shows a duplicate beside its original; accept and reject need the form token; admins only")
    func review() async throws {
        let t = try TestHub()
        defer { t.remove() }
        try await t.withClient { client in
            let (original, copy) = try Self.photoAndNearCopy(seed: 341)
            let copy2 = try Image.load(original).fitted(longSide: 600).encoded(as: .jpeg, quality: 65)
            let originalId = try await client.upload(original, label: "Banana", as: t.bearer(.supplier)).json["id"] as! String
            await t.drain()
            var copies: [String] = []
            for bytes in [copy, copy2] {
                copies.append(try await client.upload(bytes, label: "Banana", as: t.bearer(.supplier)).json["id"] as! String)
            }
            await t.drain()
            let (cookie, _) = try await Self.signIn(client, key: t.keys[.admin]!)
            let (_, page) = try await Self.page(client, "/review", cookie: cookie)
            #expect(page.contains(#"<a href="/review" aria-current="page">Review</a>"#))
            for id in copies { #expect(page.contains(#"action="/review/\#(id)""#)) }
            #expect(page.contains(#"<img src="/v1/images/\#(originalId)/thumbnail" alt="the original it duplicates""#), "the evidence beside it")
            #expect(page.contains("<code>duplicate.near</code>"))
            let token = try #require(Self.csrf(in: page))
            let form: HTTPFields = [.cookie: cookie!, .contentType: "application/x-www-form-urlencoded"]
            let forged = try await client.execute(uri: "/review/\(copies[0])", method: .post, headers: form,
                                                  body: ByteBuffer(string: "decision=accept"))
            #expect(forged.status == .forbidden)
            #expect(try t.hub.catalog.image(id: copies[0])?.status == .quarantined, "nothing decided without the token")
            let rejected = try await client.execute(uri: "/review/\(copies[0])", method: .post, headers: form,
                                                    body: ByteBuffer(string: "csrf=\(token)&decision=reject"))
            #expect(rejected.status == .seeOther && rejected.headers[.location] == "/review")
            let accepted = try await client.execute(uri: "/review/\(copies[1])", method: .post, headers: form,
                                                    body: ByteBuffer(string: "csrf=\(token)&decision=accept"))
            #expect(accepted.status == .seeOther)
            #expect(try t.hub.catalog.image(id: copies[0])?.reasonCodes == ["duplicate.near", "review.rejected"])
            #expect(try t.hub.catalog.image(id: copies[1])?.status == .accepted)
            let (_, empty) = try await Self.page(client, "/review", cookie: cookie)
            #expect(empty.contains("Nothing waits for review."))
            // Deciding again (another tab) changes nothing and lands back on the queue.
            let again = try await client.execute(uri: "/review/\(copies[0])", method: .post, headers: form,
                                                 body: ByteBuffer(string: "csrf=\(token)&decision=accept"))
            #expect(try again.status == .seeOther && t.hub.catalog.image(id: copies[0])?.status == .rejected)

            // Relabel (to the label chosen beside it) and many decided at once.
            var more: [String] = []
            for quality in [70, 60, 50] {
                let bytes = try Image.load(original).fitted(longSide: 640 - quality).encoded(as: .jpeg, quality: quality)
                more.append(try await client.upload(bytes, label: "Banana", as: t.bearer(.supplier)).json["id"] as! String)
            }
            await t.drain()
            let queued = try t.hub.catalog.quarantineQueue(limit: 10).map(\.id)
            #expect(Set(more).isSubset(of: Set(queued)), "copies wait for review")
            let (_, bulkPage) = try await Self.page(client, "/review", cookie: cookie)
            #expect(bulkPage.contains(#"<form id="bulk" method="post" action="/review""#))
            #expect(bulkPage.contains(#"name="id" value="\#(more[0])" form="bulk""#))
            #expect(bulkPage.contains(#"<button type="submit" name="decision" value="relabel" data-key="l">Relabel</button>"#))
            let relabelled = try await client.execute(uri: "/review/\(more[0])", method: .post, headers: form,
                                                      body: ByteBuffer(string: "csrf=\(token)&decision=relabel&label=Apple"))
            #expect(relabelled.status == .seeOther && relabelled.headers[.location] == "/review")
            let moved = try #require(try t.hub.catalog.image(id: more[0]))
            #expect(try moved.status == .accepted && moved.labelId == t.hub.catalog.labelId(named: "Apple"))
            let unknown = try await client.execute(uri: "/review/\(more[1])", method: .post, headers: form,
                                                   body: ByteBuffer(string: "csrf=\(token)&decision=relabel&label=Nothing"))
            #expect(unknown.status == .unprocessableContent)
            let bulkForged = try await client.execute(uri: "/review", method: .post, headers: form,
                                                      body: ByteBuffer(string: "decision=reject&id=\(more[1])&id=\(more[2])"))
            #expect(bulkForged.status == .forbidden)
            let bulk = try await client.execute(uri: "/review", method: .post, headers: form,
                                                body: ByteBuffer(string: "csrf=\(token)&decision=reject&id=\(more[1])&id=\(more[2])&id=\(more[0])"))
            #expect(bulk.status == .seeOther)
            #expect(try more[1...].allSatisfy { try t.hub.catalog.image(id: $0)?.status == .rejected })
            #expect(try t.hub.catalog.image(id: more[0])?.status == .accepted, "one decided before is left as it is")

            // A trainer's session has no Review.
            let (trainer, _) = try await Self.signIn(client, key: t.keys[.trainer]!)
            let (_, overview) = try await Self.page(client, "/", cookie: trainer)
            #expect(!overview.contains(#"href="/review""#))
            let (denied, _) = try await Self.page(client, "/review", cookie: trainer)
            #expect(denied.status == .forbidden)
        }
    }

    @Test("an image's page: its canonical rendition, every fact, the original beside a duplicate; another supplier's image is not found")
    func imagePage() async throws {
        let t = try TestHub()
        defer { t.remove() }
        try await t.withClient { client in
            let (original, copy) = try Self.photoAndNearCopy(seed: 361)
            let originalId = try await client.upload(original, label: "Banana", as: t.bearer(.supplier),
                                                     fields: ["device": "Pixel <8>", "lat": "52.52", "lon": "13.40"]).json["id"] as! String
            await t.drain()
            let copyId = try await client.upload(copy, label: "Banana", as: t.bearer(.supplier)).json["id"] as! String
            await t.drain()
            let (cookie, _) = try await Self.signIn(client, key: t.keys[.admin]!)
            let (page, html) = try await Self.page(client, "/images/\(copyId)", cookie: cookie)
            #expect(page.status == .ok)
            #expect(html.contains(#"src="/v1/images/\#(copyId)/canonical""#))
            #expect(html.contains(#"<a href="/images/\#(originalId)"><img class="canonical" src="/v1/images/\#(originalId)/canonical""#))
            #expect(html.contains("<th scope=\"row\">reasons</th><td>duplicate.near</td>"))
            let (_, first) = try await Self.page(client, "/images/\(originalId)", cookie: cookie)
            #expect(first.contains("Pixel &lt;8&gt;") && first.contains("52.52000, 13.40000"), "device escaped, place shown")
            let (_, grid) = try await Self.page(client, "/labels/Banana", cookie: cookie)
            #expect(grid.contains(#"<a href="/images/\#(originalId)">"#), "tiles open the image's page")
            // A second supplier may not see the first one's images, on the dashboard as in the API.
            let other = try t.hub.catalog.createUser(name: "other supplier", role: .supplier).key
            let (otherCookie, _) = try await Self.signIn(client, key: other)
            let (hidden, _) = try await Self.page(client, "/images/\(originalId)", cookie: otherCookie)
            #expect(hidden.status == .notFound)
        }
    }

    @Test("Batches: per batch and per device acceptance, the places as an SVG scatter with no map tiles; a supplier sees its own")
    func batchesPage() async throws {
        let t = try TestHub()
        defer { t.remove() }
        try await t.withClient { client in
            let batch = try await client.postJSON("/v1/batches", #"{"device":"Pixel <9>","lat":52.52,"lon":13.40}"#, as: t.bearer(.supplier))
            let batchId = try #require(batch.json["id"] as? String, "\(batch.json)")
            for (n, lat) in [(371, 52.52), (372, 52.53)] {
                _ = try await client.upload(try Fixtures.image(seed: n), label: "Banana", as: t.bearer(.supplier),
                                            fields: ["batch": batchId, "device": "Pixel <9>", "lat": "\(lat)", "lon": "13.40"])
            }
            _ = try await client.upload(try Fixtures.image(seed: 373), label: "Banana", as: t.bearer(.admin), fields: ["lat": "48.1", "lon": "11.6"])
            await t.drain()
            let (cookie, _) = try await Self.signIn(client, key: t.keys[.admin]!)
            let (page, html) = try await Self.page(client, "/batches", cookie: cookie)
            #expect(page.status == .ok && html.contains("<code>\(batchId)</code>") && html.contains("Pixel &lt;9&gt;"))
            #expect(html.components(separatedBy: "<circle ").count == 4, "three places")
            #expect(html.contains("100%"), "both of the batch's photos accepted")
            #expect(!html.contains("tile.openstreetmap") && !html.contains("style="), "no tiles, nothing the policy would block")
            let (supplierCookie, _) = try await Self.signIn(client, key: t.keys[.supplier]!)
            let (_, own) = try await Self.page(client, "/batches", cookie: supplierCookie)
            #expect(own.components(separatedBy: "<circle ").count == 3, "the supplier's two places only")
        }
    }

    @Test("Labels: an admin creates a label under a parent with the form token, by the API's own rule; others cannot")
    func createLabel() async throws {
        let t = try TestHub()
        defer { t.remove() }
        try await t.withClient { client in
            let (cookie, _) = try await Self.signIn(client, key: t.keys[.admin]!)
            let (_, page) = try await Self.page(client, "/labels", cookie: cookie)
            let token = try #require(Self.csrf(in: page))
            #expect(page.contains(#"<form class="search" method="post" action="/labels">"#))
            let form: HTTPFields = [.cookie: cookie!, .contentType: "application/x-www-form-urlencoded"]
            func post(_ body: String, headers: HTTPFields = form) async throws -> TestResponse {
                try await client.execute(uri: "/labels", method: .post, headers: headers, body: ByteBuffer(string: body))
            }
            #expect(try await post("name=Cherry").status == .forbidden, "no token, no label")
            let made = try await post("csrf=\(token)&name=Cherry&parent=Banana")
            #expect(made.status == .seeOther && made.headers[.location] == "/labels?q=Cherry")
            let cherry = try #require(try t.hub.catalog.label(named: "Cherry"))
            #expect(cherry.parentId == (try t.hub.catalog.label(named: "Banana"))?.id)
            let comma = try await post("csrf=\(token)&name=a%2Cb")
            #expect(comma.status == .badRequest && String(buffer: comma.body).contains("field.invalid"), "the API's rule: no commas")
            let (supplier, _) = try await Self.signIn(client, key: t.keys[.supplier]!)
            let (_, theirs) = try await Self.page(client, "/labels", cookie: supplier)
            #expect(!theirs.contains(#"method="post" action="/labels""#), "no form for a supplier")
            let supplierToken = try #require(Self.csrf(in: theirs))
            let refused = try await post("csrf=\(supplierToken)&name=Plum", headers: [.cookie: supplier!, .contentType: "application/x-www-form-urlencoded"])
            #expect(try refused.status == .forbidden && t.hub.catalog.label(named: "Plum") == nil)

            // The Open Images files from the admin's disk, as a browser sends a form with two files.
            #expect(page.contains(#"action="/labels/import" enctype="multipart/form-data""#) && !theirs.contains("/labels/import"))
            func importing(_ csrf: String?, cookie: String?) async throws -> TestResponse {
                let boundary = "----dih\(UInt32.random(in: 0...UInt32.max))"
                var body = ""
                if let csrf { body += "--\(boundary)\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n\(csrf)\r\n" }
                body += "--\(boundary)\r\nContent-Disposition: form-data; name=\"classes\"; filename=\"classes.csv\"\r\nContent-Type: text/csv\r\n\r\n"
                body += "/m/0fruit,Fruit\n/m/0kiwi,Kiwi\r\n"
                body += "--\(boundary)\r\nContent-Disposition: form-data; name=\"hierarchy\"; filename=\"hierarchy.json\"\r\nContent-Type: application/json\r\n\r\n"
                body += #"{"LabelName": "/m/0bl9f", "Subcategory": [{"LabelName": "/m/0fruit", "Subcategory": [{"LabelName": "/m/0kiwi"}]}]}"#
                body += "\r\n--\(boundary)--\r\n"
                return try await client.execute(uri: "/labels/import", method: .post,
                                                headers: [.cookie: cookie!, .contentType: "multipart/form-data; boundary=\(boundary)"],
                                                body: ByteBuffer(string: body))
            }
            #expect(try await importing(nil, cookie: cookie).status == .forbidden && (try t.hub.catalog.label(named: "Kiwi")) == nil)
            #expect(try await importing(supplierToken, cookie: supplier).status == .forbidden)
            let imported = try await importing(token, cookie: cookie)
            #expect(imported.status == .ok && String(buffer: imported.body).contains("2 classes read: 2 labels made, 1 placed under their parents."),
                    "\(String(buffer: imported.body))")
            #expect(try t.hub.catalog.label(named: "Kiwi")?.parentId == (try t.hub.catalog.label(named: "Fruit"))?.id)
        }
    }

    @Test("Models shows the watch-list: a watched label, its threshold and webhook, whether it fired")
    func watchList() async throws {
        let t = try TestHub()
        defer { t.remove() }
        let banana = try #require(try t.hub.catalog.label(named: "Banana")?.id)
        let trainer = try #require(try t.hub.catalog.user(forKey: t.keys[.trainer]!))
        _ = try t.hub.catalog.watch(labelId: banana, threshold: 25, webhookUrl: "https://example.test/<hook>", userId: trainer.id!)
        try await t.withClient { client in
            let (cookie, _) = try await Self.signIn(client, key: t.keys[.trainer]!)
            let (_, page) = try await Self.page(client, "/models", cookie: cookie)
            #expect(page.contains("No model yet."))
            #expect(page.contains("<tr><td>Banana</td><td class=\"num\">25</td><td><code>https://example.test/&lt;hook&gt;</code></td>"))
            #expect(page.contains("<td>not yet</td>"))
            let (supplier, _) = try await Self.signIn(client, key: t.keys[.supplier]!)
            let (denied, _) = try await Self.page(client, "/models", cookie: supplier)
            #expect(denied.status == .forbidden, "as GET /v1/models: no models for a supplier")
        }
    }

    @Test("Quests lists what to photograph next with example thumbnails; a supplier's examples are its own")
    func questsPage() async throws {
        let t = try TestHub(labels: ["Daisy", "Tulip"])
        defer { t.remove() }
        let supplier = try #require(try t.hub.catalog.user(forKey: t.keys[.supplier]!))
        let daisy = try #require(try t.hub.catalog.labelId(named: "Daisy"))
        try t.hub.catalog.insertSyntheticEmbeddedImages(labelId: daisy, uploaderId: supplier.id!, model: "test", vectors: [Data(count: 16)])
        let example = try #require(try t.hub.catalog.newestAccepted(labelId: daisy, limit: 1).first?.id)
        try await t.withClient { client in
            let (cookie, _) = try await Self.signIn(client, key: t.keys[.requester]!)
            let (_, empty) = try await Self.page(client, "/quests", cookie: cookie)
            #expect(empty.contains("No quest is open.") && empty.contains("<a href=\"/quests\" aria-current=\"page\">Quests</a>"))
            _ = try QuestsTests.model(t.hub.catalog, labels: ["Daisy", "Tulip"], recall: [0.5, 1.0], confusion: [[5, 5], [0, 10]], createdAt: Date())
            let (_, page) = try await Self.page(client, "/quests", cookie: cookie)
            #expect(page.contains("<td><a href=\"/labels/Daisy\">Daisy</a></td><td>More photos of Daisy: the model finds 50% of them.</td><td class=\"num\">32</td>"))
            #expect(page.contains("<code>model.confused</code>") && page.contains("<img src=\"/v1/images/\(example)/thumbnail\""))
            let (mine, _) = try await Self.signIn(client, key: t.keys[.supplier]!)
            let (_, supplierPage) = try await Self.page(client, "/quests", cookie: mine)
            #expect(supplierPage.contains("/v1/images/\(example)/thumbnail"), "the supplier's own upload is its example")
        }
    }
}
