import Foundation
import HubCore
import HubServer
import HubTesting
import Imaging
import NIOCore
import Organize
import Simulator
import Testing

/// Reads a ustar archive into (name, bytes) pairs, checking its structure as it goes.
func untar(_ data: Data) throws -> [(name: String, bytes: Data)] {
    var out: [(String, Data)] = []
    var offset = 0
    let bytes = [UInt8](data)
    while offset + 512 <= bytes.count {
        let header = Array(bytes[offset..<offset + 512])
        if header.allSatisfy({ $0 == 0 }) { break }
        func text(_ from: Int, _ length: Int) -> String {
            String(decoding: header[from..<from + length].prefix { $0 != 0 }, as: UTF8.self)
        }
        let stored = Int(text(148, 6), radix: 8)!
        let sum = header.enumerated().reduce(0) { $0 + (148..<156 ~= $1.offset ? 32 : Int($1.element)) }
        #expect(stored == sum, "bad tar checksum")
        #expect(text(257, 5) == "ustar")
        let size = Int(text(124, 11), radix: 8)!
        let prefix = text(345, 155)
        let name = prefix.isEmpty ? text(0, 100) : prefix + "/" + text(0, 100)
        out.append((name, Data(bytes[offset + 512..<offset + 512 + size])))
        offset += 512 + (size + 511) / 512 * 512
    }
    return out
}

@Suite struct OrganizeTests {
    @Test func labelsFormATreeWithCounts() async throws {
        let t = try TestHub(labels: [])
        defer { t.remove() }
        try await t.withClient { client in
            #expect(try await client.postJSON("/v1/labels", #"{"name":"Fruit"}"#, as: t.bearer(.admin)).status == .created)
            #expect(try await client.postJSON("/v1/labels", #"{"name":"Banana","parent":"Fruit","mid":"/m/09qck"}"#, as: t.bearer(.admin)).status == .created)
            #expect(try await client.postJSON("/v1/labels", #"{"name":"banana"}"#, as: t.bearer(.admin)).errorCode == "label.exists")
            #expect(try await client.postJSON("/v1/labels", #"{"name":"Kiwi","parent":"Nope"}"#, as: t.bearer(.admin)).errorCode == "label.unknown")
            #expect(try await client.postJSON("/v1/labels", #"{"nam":"x"}"#, as: t.bearer(.admin)).errorCode == "request.invalid_json")
            _ = try await client.upload(try Fixtures.image(seed: 51), label: "Banana", as: t.bearer(.supplier))
            await t.drain()
            let tree = try await client.get("/v1/labels", as: t.bearer(.requester)).json["labels"] as? [[String: Any]] ?? []
            #expect(tree.count == 1 && tree[0]["name"] as? String == "Fruit")
            let banana = (tree[0]["children"] as? [[String: Any]])?.first
            #expect(banana?["mid"] as? String == "/m/09qck")
            #expect((banana?["counts"] as? [String: Int])?["accepted"] == 1)
        }
    }

    @Test func relatedLabelsAreAncestorsAndDescendants() throws {
        let t = try TestHub(labels: [])
        defer { t.remove() }
        let c = t.hub.catalog
        let animal = try c.createLabel(name: "Animal"), dog = try c.createLabel(name: "Dog", parent: "Animal")
        let dalmatian = try c.createLabel(name: "Dalmatian", parent: "Dog"), puppy = try c.createLabel(name: "Puppy", parent: "Dalmatian")
        let cat = try c.createLabel(name: "Cat", parent: "Animal")
        #expect(try c.relatedLabelIds(dog.id!) == [animal.id!, dalmatian.id!, puppy.id!])
        #expect(try c.relatedLabelIds(animal.id!) == [dog.id!, dalmatian.id!, puppy.id!, cat.id!])
        #expect(try c.relatedLabelIds(puppy.id!) == [animal.id!, dog.id!, dalmatian.id!])
        #expect(try c.relatedLabelIds(cat.id!) == [animal.id!])
    }

    @Test func openImagesClassesAndHierarchyImport() async throws {
        let t = try TestHub(labels: [])
        defer { t.remove() }
        let csv = "/m/0bl9f,Entity\n/m/02xwb,Fruit\n/m/09qck,Banana\n/m/014j1m,Apple\n\"/m/0x,y\",\"Ducks, geese and swans\"\n"
        let hierarchy = #"{"LabelName":"/m/0bl9f","Subcategory":[{"LabelName":"/m/02xwb","Subcategory":[{"LabelName":"/m/09qck"},{"LabelName":"/m/014j1m","Part":[{"LabelName":"/m/09qck"}]}]}]}"#
        var body = MultipartBody()
        body.file("classes", filename: "classes.csv", type: "text/csv", Data(csv.utf8))
        body.file("hierarchy", filename: "h.json", type: "application/json", Data(hierarchy.utf8))
        let upload = body
        try await t.withClient { client in
            let r = try await client.execute(uri: "/v1/labels/import", method: .post,
                                             headers: [.authorization: t.bearer(.admin), .contentType: upload.contentType],
                                             body: ByteBuffer(bytes: upload.closed()))
            #expect(r.status == .ok, "\(r.json)")
            #expect(r.json["created"] as? Int == 5 && r.json["linked"] as? Int == 2)
            let again = try await client.execute(uri: "/v1/labels/import", method: .post,
                                                 headers: [.authorization: t.bearer(.admin), .contentType: upload.contentType],
                                                 body: ByteBuffer(bytes: upload.closed()))
            #expect(again.json["created"] as? Int == 0, "import is idempotent")
            var bad = MultipartBody()
            bad.file("classes", filename: "c.csv", type: "text/csv", Data("not,a,mid\n".utf8))
            let refused = try await client.execute(uri: "/v1/labels/import", method: .post,
                                                   headers: [.authorization: t.bearer(.admin), .contentType: bad.contentType],
                                                   body: ByteBuffer(bytes: bad.closed()))
            #expect(refused.errorCode == "labels.invalid_csv")
        }
        #expect(try t.hub.catalog.labels(named: ["Fruit"], descendants: true).map(\.name) == ["Apple", "Banana", "Fruit"])
        #expect(try t.hub.catalog.label(named: "Ducks, geese and swans")?.mid == "/m/0x,y")
    }

    @Test(needsSharedData) func realOpenImagesFilesImport() throws {
        let t = try TestHub(labels: [])
        defer { t.remove() }
        let classes = try LabelImport.classes(csv: try String(contentsOf: SharedData.url("openimages/class-descriptions-boxable.csv"), encoding: .utf8))
        #expect(classes.count == 601)
        let edges = try LabelImport.edges(hierarchyJSON: try SharedData.data("openimages/bbox_labels_600_hierarchy.json"))
        let result = try t.hub.catalog.importLabels(classes: classes, edges: edges)
        #expect(result.created == 601)
        let rose = try #require(try t.hub.catalog.label(named: "Rose"))
        let flower = try #require(try t.hub.catalog.label(named: "Flower"))
        #expect(rose.mid == "/m/06m11" && rose.parentId == flower.id)
        #expect(try t.hub.catalog.labels(named: ["Flower"], descendants: true).contains { $0.name == "Rose" })
        let v6 = try LabelImport.classes(csv: try String(contentsOf: SharedData.url("openimages/oidv6-class-descriptions.csv"), encoding: .utf8))
        #expect(v6.count == 19_994)
        #expect(v6.contains { $0.name == "Ducks, geese and swans" })
    }

    @Test func exportTarMatchesTheCatalog() async throws {
        let t = try TestHub(labels: [])
        defer { t.remove() }
        try t.hub.catalog.createLabel(name: "Fruit", mid: "/m/02xwb")
        try t.hub.catalog.createLabel(name: "Banana", parent: "Fruit", mid: "/m/09qck")
        try t.hub.catalog.createLabel(name: "Apple", parent: "Fruit")
        try await t.withClient { client in
            var expected: [String: String] = [:]
            for i in 0..<7 {
                let label = i % 2 == 0 ? "Banana" : "Apple"
                let id = try await client.upload(try Fixtures.image(seed: 60 + i * 5), label: label, as: t.bearer(.supplier)).json["id"] as! String
                expected[id] = label
            }
            let blurry = try Image.load(try Fixtures.image(seed: 99)).blurred(sigma: 8).encoded(as: .jpeg)
            let quarantined = try await client.upload(blurry, label: "Banana", as: t.bearer(.supplier)).json["id"] as! String
            await t.drain()
            #expect(try t.hub.catalog.image(id: quarantined)?.status == .quarantined)

            let tar = try await client.get("/v1/datasets/export?labels=Fruit&descendants=true&format=imagefolder", as: t.bearer(.requester))
            #expect(tar.status == .ok && tar.headers[.contentType] == "application/x-tar")
            let entries = try untar(tar.bytes)
            #expect(Set(entries.map(\.name)) == Set(expected.map { "\($0.value)/\($0.key).jpg" }))
            for entry in entries {
                let id = String(entry.name.split(separator: "/")[1].dropLast(4))
                let record = try #require(try t.hub.catalog.image(id: id))
                #expect(entry.bytes == (try t.hub.blobs.read(record.canonicalKey!)))
            }
            let onlyBanana = try untar(try await client.get("/v1/datasets/export?labels=Banana", as: t.bearer(.requester)).bytes)
            #expect(onlyBanana.count == 4)
            let fruitOnly = try untar(try await client.get("/v1/datasets/export?labels=Fruit", as: t.bearer(.requester)).bytes)
            #expect(fruitOnly.isEmpty, "without descendants, Fruit has no images of its own")

            let oi = try untar(try await client.get("/v1/datasets/export?labels=Banana,Apple&format=openimages", as: t.bearer(.trainer)).bytes)
            let csv = String(decoding: try #require(oi.first { $0.name == "labels.csv" }).bytes, as: UTF8.self)
            let rows = csv.split(separator: "\n").dropFirst().map { $0.split(separator: ",").map(String.init) }
            #expect(csv.hasPrefix("ImageID,Source,LabelName,Confidence\n"))
            #expect(Set(rows.map { $0[0] }) == Set(expected.keys))
            #expect(rows.allSatisfy { ($0[2] == "/m/09qck") == (expected[$0[0]] == "Banana") })
            #expect(oi.filter { $0.name.hasPrefix("images/") }.count == 7)
            #expect(oi.contains { $0.name == "class-descriptions.csv" })
            #expect(try await client.get("/v1/datasets/export?labels=Nope", as: t.bearer(.requester)).errorCode == "label.unknown")
            #expect(try await client.get("/v1/datasets/export?labels=Banana&format=zip", as: t.bearer(.requester)).errorCode == "field.invalid")
        }
    }

    @Test func labelImagesArePagedByCursor() async throws {
        let t = try TestHub()
        defer { t.remove() }
        try await t.withClient { client in
            for i in 0..<5 { _ = try await client.upload(try Fixtures.image(width: 320, height: 240, seed: 200 + i * 3), label: "Apple", as: t.bearer(.supplier)) }
            var seen: [String] = []
            var cursor: String?
            repeat {
                let page = try await client.get("/v1/labels/Apple/images?limit=2" + (cursor.map { "&cursor=\($0)" } ?? ""), as: t.bearer(.requester)).json
                seen += (page["images"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }
                cursor = page["next_cursor"] as? String
            } while cursor != nil
            #expect(seen.count == 5 && Set(seen).count == 5 && seen == seen.sorted())
        }
    }
}
