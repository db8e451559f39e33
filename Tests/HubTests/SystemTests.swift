import Foundation
import HubServer
import HubTesting
import Testing

@Suite struct SystemTests {
    @Test func everyRouteIsInTheOpenAPIDocument() async throws {
        let t = try TestHub()
        defer { t.remove() }
        let doc = OpenAPI.document
        let routes = routeTable(hub: t.hub)
        #expect(routes.count >= 15)
        for (method, path) in routes {
            let templated = path.split(separator: "/").map { $0.hasPrefix(":") ? "{\($0.dropFirst())}" : String($0) }.joined(separator: "/")
            guard let start = doc.range(of: "\n  /\(templated):\n") ?? doc.range(of: "\n  /\(templated.dropFirst()):\n") else {
                Issue.record("\(method.uppercased()) /\(templated) is not in openapi.yaml")
                continue
            }
            let block = String(doc[start.upperBound...]).components(separatedBy: "\n  /").first ?? ""
            #expect(block.contains("    \(method):"), "\(method.uppercased()) \(path) is not documented")
        }
        try await t.withClient { client in
            let served = try await client.get("/openapi.yaml", as: t.bearer(.requester))
            #expect(served.status == .ok && String(decoding: served.bytes, as: UTF8.self).hasPrefix("openapi: 3."))
            // A path served with other methods answers 405 and says which; an unknown path 404.
            let trace = try await client.execute(uri: "/v1/labels", method: .init("TRACE")!, headers: [.authorization: t.bearer(.admin)])
            #expect(trace.status.code == 405 && trace.errorCode == "method.not_allowed" && trace.headers[.allow] == "GET, POST")
            let put = try await client.execute(uri: "/v1/images/some-id", method: .put, headers: [.authorization: t.bearer(.admin)])
            #expect(put.status.code == 405 && put.headers[.allow] == "GET")
            #expect(try await client.get("/v1/nothing-here", as: t.bearer(.admin)).status.code == 404)
            // Query values outside what the document allows are refused, not clamped.
            for uri in ["/v1/labels/Banana/images?limit=0", "/v1/labels/Banana/images?limit=1001", "/v1/labels/Banana/images?limit=ten",
                        "/v1/labels/Banana/clusters?members=null", "/v1/images/x/similar?k=101"] {
                let answer = try await client.get(uri, as: t.bearer(.admin))
                #expect(answer.status.code == 400 && answer.errorCode == "field.invalid", "\(uri): \(answer.status)")
            }
            #expect(try await client.get("/v1/labels/Banana/images?limit=1001", as: t.bearer(.admin)).errorCode == "field.invalid")
            #expect(try await client.get("/v1/labels/Banana/images?limit=1000", as: t.bearer(.admin)).status == .ok)
        }
        // Every operation lists the errors its shape can give, with the one error schema.
        let upload = String(doc[doc.range(of: "\n  /v1/images:\n")!.upperBound...]).components(separatedBy: "\n  /").first ?? ""
        for code in ["400", "401", "403", "413", "415", "503"] { #expect(upload.contains("'\(code)': {$ref: '#/components/responses/Error'}"), "\(code)") }
        let health = String(doc[doc.range(of: "\n  /healthz:\n")!.upperBound...]).components(separatedBy: "\n  /").first ?? ""
        #expect(!health.contains("'401'"), "a public route asks for no key")
        #expect(doc.contains("description: 'the reason code: auth.csrf, auth.forbidden,"))
    }

    @Test("the document's list of error reason codes is exactly the codes the sources throw")
    func errorCodesMatchTheSources() throws {
        let sources = DocsTests.root.appendingPathComponent("Sources")
        var found = Set<String>()
        let patterns = [/HubError\([0-9]{3}, "([a-z_]+\.[a-z_]+)"/, /Rejection\("([a-z_]+\.[a-z_]+)"/, /code: "([a-z_]+\.[a-z_]+)"/,
                        /"(route\.not_found|upload\.too_large|request\.invalid|decode\.truncated|decode\.corrupt)"/]
        for module in ["HubServer", "Ingest", "Jobs", "Catalog", "Verify", "Imaging", "Organize", "Embedding", "Training", "BlobStore", "Preprocess"] {
            let dir = sources.appendingPathComponent(module)
            for case let file as URL in FileManager.default.enumerator(at: dir, includingPropertiesForKeys: nil)! where file.pathExtension == "swift" {
                let text = try String(contentsOf: file, encoding: .utf8)
                for pattern in patterns { for match in text.matches(of: pattern) { found.insert(String(match.1)) } }
            }
        }
        #expect(found.count >= 60)
        #expect(found.subtracting(OpenAPI.errorCodes).sorted() == [], "thrown but not in OpenAPI.errorCodes")
        #expect(Set(OpenAPI.errorCodes).subtracting(found).sorted() == [], "listed but thrown nowhere")
    }

    @Test func metricsShowUploadsOutcomesBacklogAndStageLatencies() async throws {
        let t = try TestHub()
        defer { t.remove() }
        try await t.withClient { client in
            _ = try await client.upload(try Fixtures.image(seed: 81), label: "Banana", as: t.bearer(.supplier))
            _ = try await client.upload(try Fixtures.pngDeclaring(width: 30_000, height: 30_000), label: "Banana", as: t.bearer(.supplier))
            await t.drain()
            let text = String(decoding: try await client.get("/metrics", as: t.bearer(.requester)).bytes, as: UTF8.self)
            #expect(text.contains("imagehub_uploads_total"))
            #expect(text.contains(#"imagehub_outcomes_total{reason="size.too_large",status="rejected"}"#) ||
                    text.contains(#"imagehub_outcomes_total{status="rejected",reason="size.too_large"}"#), "\(text)")
            #expect(text.contains("imagehub_backlog 0"))
            #expect(text.contains(#"imagehub_stage_seconds_bucket{stage="decode""#))
            #expect(try await client.get("/metrics", as: nil).status == .unauthorized)
        }
    }
}
