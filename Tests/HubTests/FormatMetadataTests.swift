import Foundation
import HubCore
import HubServer
import HubTesting
import Imaging
import Testing

/// Every allowed format, not only JPEG: EXIF orientation and GPS in PNG (eXIf), WebP (EXIF chunk) and HEIC
/// (Exif item) — pixels served upright, GPS never served; decompression bombs declared in WebP and HEIC
/// headers, and a PNG over 100 MP with both sides within limits, refused before any pixel is decoded.
@Suite("Formats: metadata and bombs", .serialized)
struct FormatMetadataTests {
    static let python = DocsTests.root.appendingPathComponent(".venv/bin/python")

    /// A landscape picture, dark on its left half and bright on its right, stored turned (portrait) with EXIF
    /// orientation 6 and a GPS position, as PNG and WebP (Pillow) and HEIC (libvips from the PNG).
    static func fixtures(in dir: URL) async throws -> [String: Data] {
        let script = """
            import sys
            from PIL import Image
            im = Image.new("RGB", (400, 200))
            im.paste((30, 30, 30), (0, 0, 200, 200)); im.paste((220, 220, 220), (200, 0, 400, 200))
            stored = im.transpose(Image.Transpose.ROTATE_90)
            exif = Image.Exif()
            exif[0x0112] = 6
            exif[0x8825] = {1: "N", 2: (52.0, 31.0, 12.0), 3: "E", 4: (13.0, 24.0, 36.0)}
            stored.save(sys.argv[1] + "/turned.png", exif=exif.tobytes())
            stored.save(sys.argv[1] + "/turned.webp", exif=exif.tobytes(), quality=92)
            """
        let (status, _) = try await runProgram(python, ["-c", script, dir.path])
        #expect(status == 0)
        let (heif, _) = try await runProgram(URL(fileURLWithPath: "/usr/bin/vips"),
                                             ["copy", dir.appendingPathComponent("turned.png").path, dir.appendingPathComponent("turned.heic").path])
        #expect(heif == 0)
        var files: [String: Data] = [:]
        for ext in ["png", "webp", "heic"] { files[ext] = try Data(contentsOf: dir.appendingPathComponent("turned.\(ext)")) }
        return files
    }

    @Test("PNG, WebP and HEIC with EXIF orientation and GPS: served upright, without GPS or any metadata")
    func metadataInEveryFormat() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("imagehub-formats-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let files = try await Self.fixtures(in: dir)
        for (format, bytes) in files.sorted(by: { $0.key < $1.key }) {
            // PNG and WebP carry their orientation in EXIF; HEIF turns pixels with its own `irot`/`imir`
            // boxes, which libheif applies, and an EXIF orientation inside a HEIC must not turn them again.
            let heif = format == "heic"
            #expect(try Image.header(of: bytes).orientation == (heif ? 1 : 6), "\(format)")
            // One hub per format: the three files show the same picture (near duplicates of each other).
            let t = try TestHub(labels: ["Banana"])
            defer { t.remove() }
            try await t.withClient { client in
                let id = try #require(try await client.upload(bytes, label: "Banana", as: t.bearer(.supplier), filename: "turned.\(format)").json["id"] as? String)
                await t.drain()
                let image = try await client.get("/v1/images/\(id)", as: t.bearer(.admin)).json
                #expect(image["status"] as? String == "accepted" && image["format"] as? String == (heif ? "heif" : format), "\(format): \(image)")
                #expect(image["width"] as? Int == (heif ? 200 : 400) && image["height"] as? Int == (heif ? 400 : 200), "\(format): \(image)")
                for rendition in ["canonical", "thumbnail"] {
                    let data = Data(try await client.get("/v1/images/\(id)/\(rendition)", as: t.bearer(.supplier)).bytes)
                    #expect(data.range(of: Data("Exif".utf8)) == nil && data.range(of: Data("GPS".utf8)) == nil, "\(format) \(rendition): no metadata")
                    let pixels = try Image.load(data)
                    let bytes = try pixels.bytes(), bands = pixels.bands, w = pixels.width, h = pixels.height
                    func mean(columns: Range<Int>, rows: Range<Int>) -> Double {
                        var sum = 0, n = 0
                        for y in rows { for x in columns { sum += Int(bytes[(y * w + x) * bands]); n += 1 } }
                        return Double(sum) / Double(n)
                    }
                    if heif {
                        // As stored: the landscape turned a quarter to the left, its dark half at the bottom.
                        #expect(h > w && mean(columns: 0..<w, rows: h * 3 / 4..<h) < 60 && mean(columns: 0..<w, rows: 0..<h / 4) > 190, "\(format) \(rendition)")
                    } else {
                        #expect(w > h && mean(columns: 0..<w / 4, rows: 0..<h) < 60 && mean(columns: w * 3 / 4..<w, rows: 0..<h) > 190, "\(format) \(rendition): upright")
                    }
                }
                let original = Data(try await client.get("/v1/images/\(id)/original", as: t.bearer(.admin)).bytes)
                #expect(original == bytes, "the original is kept as uploaded (admins only)")
            }
        }
    }

    @Test("bombs: a WebP and a HEIC declaring 144 and 225 MP, a PNG of 12000 × 12000 — refused size.too_large from the header")
    func bombsAreRefusedFromTheHeader() async throws {
        let t = try TestHub(labels: ["Banana"])
        defer { t.remove() }
        // WebP: a lossless (VP8L) header declaring 12000 × 12000, then no pixels to speak of.
        var vp8l = Data([0x2F])
        let bits = UInt32(12000 - 1) | (UInt32(12000 - 1) << 14)
        withUnsafeBytes(of: bits.littleEndian) { vp8l.append(contentsOf: $0) }
        vp8l.append(Data(count: 63))
        func le32(_ v: Int) -> Data { withUnsafeBytes(of: UInt32(v).littleEndian) { Data($0) } }
        let chunk = Data("VP8L".utf8) + le32(vp8l.count) + vp8l
        let webp = Data("RIFF".utf8) + le32(4 + chunk.count) + Data("WEBP".utf8) + chunk
        // HEIC: a real 200 × 400 file whose `ispe` property is made to say 15000 × 15000.
        let dir = t.directory.appendingPathComponent("fixtures")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        var heic = try #require(try await Self.fixtures(in: dir)["heic"])
        let ispe = try #require(heic.range(of: Data("ispe".utf8)))
        let sides = withUnsafeBytes(of: UInt32(15000).bigEndian) { Data($0) }
        heic.replaceSubrange(ispe.upperBound + 4..<ispe.upperBound + 12, with: sides + sides)
        let png = try Fixtures.pngDeclaring(width: 12000, height: 12000)
        let bombs: [(String, Data)] = [("webp", webp), ("heic", heic), ("png", png)]
        try await t.withClient { client in
            let before = try await MetricsTests.read(client, t)
            for (format, bytes) in bombs {
                let header = try Image.header(of: bytes)
                #expect(max(header.width, header.height) <= t.hub.settings.maxSide, "\(format): both sides within limits")
                let id = try #require(try await client.upload(bytes, label: "Banana", as: t.bearer(.supplier)).json["id"] as? String)
                await t.drain()
                let image = try await client.get("/v1/images/\(id)", as: t.bearer(.admin)).json
                #expect(image["status"] as? String == "rejected" && image["reasons"] as? [String] == ["size.too_large"], "\(format): \(image)")
            }
            // Refused at the header stage: not one of them reached the decoder.
            let after = try await MetricsTests.read(client, t)
            let decodes = (after["imagehub_stage_seconds_count{stage=\"decode\"}"] ?? 0) - (before["imagehub_stage_seconds_count{stage=\"decode\"}"] ?? 0)
            #expect(decodes == 0)
        }
    }
}
