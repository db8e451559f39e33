import Foundation
import HubCore
import HubTesting
import Imaging
import Preprocess
import Testing

@Suite struct PreprocessTests {
    init() { Vips.start() }

    /// Mean luminance of the left and right halves.
    func halves(_ image: Image) throws -> (left: Double, right: Double) {
        let g = try image.grey()
        let half = g.width / 2
        return (try g.cropped(left: 0, top: 0, width: half, height: g.height).qualityMetrics().brightness,
                try g.cropped(left: half, top: 0, width: half, height: g.height).qualityMetrics().brightness)
    }

    @Test(arguments: [6, 8]) func exifRotatedJPEGComesOutUpright(orientation: Int) throws {
        let bytes = try Fixtures.rotatedJPEG(orientation: orientation)
        let stored = try Image.load(bytes)
        #expect(stored.width == 200 && stored.height == 400, "the fixture stores its pixels turned")
        let p = Preprocessor(canonicalSide: 1024, thumbnailSide: 256, quality: 88)
        let out = try Image.load(try p.renditions(of: try p.normalize(try Image.decode(bytes, longSide: 1024, strictness: .warning))).canonical)
        #expect(out.width == 400 && out.height == 200)
        let (left, right) = try halves(out)
        #expect(left < 80 && right > 180, "dark half must be on the left: \(left) / \(right)")
        #expect(!out.hasMetadata)
    }

    @Test("decode, shrink-on-load, fit, orientation and colour in one pass: upright for every turn", arguments: [1, 3, 6, 8])
    func onePassDecodeTurnsEveryOrientationUpright(orientation: Int) throws {
        // 2400 × 1200 displayed: the decoder shrinks by 2 on load, the pass fits it to 1024 and turns it.
        let bytes = try Fixtures.rotatedJPEG(orientation: orientation, width: 2400, height: 1200)
        let header = try Image.header(of: bytes)
        #expect(header.orientation == orientation)
        let p = Preprocessor(canonicalSide: 1024, thumbnailSide: 256, quality: 88)
        let upright = try Image.decode(bytes, header: header, longSide: 1024, strictness: .warning, then: p.normalize)
        #expect(upright.width == 1024 && upright.height == 512 && upright.bands == 3)
        let (left, right) = try halves(upright)
        #expect(left < 80 && right > 180, "dark half must be on the left: \(left) / \(right)")
        // Truncated in the scan, the same pass fails as a decode error rather than coming out half grey.
        #expect(throws: ImagingError.self) {
            try Image.decode(bytes.prefix(bytes.count * 2 / 3), header: header, longSide: 1024, strictness: .error, then: p.normalize)
        }
    }

    @Test func stepsApplyInOrderAndEachWorksAlone() throws {
        let image = try Image.load(try Fixtures.image(.png, width: 2000, height: 1000))
        #expect(try PreprocessStep.fit(512).apply(image).width == 512)
        #expect(try PreprocessStep.toSRGB.apply(image).bands == 3)
        let grey = try image.grey()
        #expect(try PreprocessStep.toSRGB.apply(grey).bands == 3)
        let p = Preprocessor(canonicalSide: 1024, thumbnailSide: 256, quality: 88)
        #expect(p.steps.map(\.name) == ["fit(1024)", "toSRGB", "autoRotate"])
        let r = try p.renditions(of: try p.normalize(image))
        #expect(try Image.load(r.canonical).width == 1024)
        #expect(try Image.load(r.thumbnail).width == 256)
    }

    @Test(needsSharedData) func realPhonePhotosComeOutUprightWithoutGPS() async throws {
        let t = try TestHub(labels: ["Phone"])
        defer { t.remove() }
        // Orientation 6 (stored landscape, displayed portrait) and files carrying GPS coordinates.
        let cases: [(String, portrait: Bool)] = [
            ("photos-phone/apple-iphone-4s.jpg", true), ("photos-phone/leica-t-typ701-camera.jpg", true),
            ("photos-phone/apple-iphone-6.jpg", false), ("photos-phone/samsung-galaxy-s7-edge-sm-g935l.jpg", false),
            ("photos-phone/lg-nexus-4.jpg", true),
        ]
        try await t.withClient { client in
            var ids: [String: String] = [:]
            for (path, _) in cases {
                let original = try SharedData.data(path)
                #expect(try Image.load(original).hasMetadata)
                ids[path] = try await client.upload(original, label: "Phone", as: t.bearer(.supplier)).json["id"] as? String
            }
            await t.drain()
            for (path, portrait) in cases {
                let json = try await client.get("/v1/images/\(ids[path]!)", as: t.bearer(.supplier)).json
                #expect(json["status"] as? String == "accepted", "\(path): \(json)")
                for kind in ["canonical", "thumbnail"] {
                    let bytes = try await client.get("/v1/images/\(ids[path]!)/\(kind)", as: t.bearer(.supplier)).bytes
                    let image = try Image.load(bytes)
                    #expect(!image.hasMetadata, "\(path) \(kind) still carries metadata")
                    #expect(!bytes.contains(Data("Exif".utf8)) && !bytes.contains(Data("GPS".utf8)))
                    #expect((image.height > image.width) == portrait, "\(path) \(kind) is \(image.width)×\(image.height)")
                    #expect(max(image.width, image.height) == (kind == "canonical" ? 1024 : 256))
                }
            }
        }
    }
}

/// The canonical rendition of a photo that needs no pixel change is the upload's own JPEG data without
/// its metadata (`JPEGStrip`).
@Suite struct PassThroughTests {
    init() { Vips.start() }

    /// `jpeg` with EXIF (orientation 1), XMP naming a place, IPTC and a comment after its SOI, and bytes
    /// after its EOI, as phones and editors leave them.
    static func withMetadata(_ jpeg: Data) throws -> Data {
        func segment(_ code: UInt8, _ payload: Data) -> Data {
            Data([0xFF, code, UInt8((payload.count + 2) >> 8), UInt8((payload.count + 2) & 0xFF)]) + payload
        }
        let exif = try Image.load(jpeg).withOrientation(1).jpegKeepingMetadata()
        #expect(exif.range(of: Data("Exif".utf8)) != nil)
        let xmp = segment(0xE1, Data("http://ns.adobe.com/xap/1.0/\u{0}<x:xmpmeta>GPSLatitude 52.5163 GPSLongitude 13.3777</x:xmpmeta>".utf8))
        let iptc = segment(0xED, Data("Photoshop 3.0\u{0}8BIM secret caption".utf8))
        let comment = segment(0xFE, Data("taken at home".utf8))
        let jfxx = segment(0xE0, Data("JFXX\u{0}\u{13}a JFXX thumbnail".utf8))
        return exif.prefix(2) + xmp + iptc + comment + jfxx + exif.dropFirst(2) + Data("trailing thumbnail bytes".utf8)
    }

    @Test("metadata, comments and trailing bytes are left out; the compressed pixels are kept exactly")
    func stripsEverythingButThePixels() throws {
        for progressive in [false, true] {
            let plain = try Fixtures.image(.jpeg, width: 640, height: 480, seed: 3)
            let source = progressive ? try Image.load(plain).jpegProgressive() : plain
            let uploaded = try Self.withMetadata(source)
            let stripped = try #require(JPEGStrip.metadataFree(uploaded))
            for secret in ["Exif", "GPSLatitude", "secret caption", "taken at home", "trailing", "http://ns.adobe.com", "JFXX"] {
                #expect(stripped.range(of: Data(secret.utf8)) == nil, "\(secret) left in (progressive: \(progressive))")
            }
            #expect(stripped.count < uploaded.count && stripped.suffix(2) == Data([0xFF, 0xD9]))
            let a = try Image.load(stripped), b = try Image.load(uploaded)
            #expect(!a.hasMetadata && a.width == 640 && a.height == 480)
            #expect(try a.bytes() == b.bytes(), "the same pixels, bit for bit")
        }
    }

    @Test("not for what needs the pixels changed or cannot be read: ICC profiles, grey, PNG, damage")
    func refusesWhatItCannotKeep() throws {
        let photo = try Synthetic.photo(width: 320, height: 240, seed: 5)
        let p3 = try photo.converted(toProfile: "p3").jpegKeepingMetadata()
        #expect(try Image.load(p3).hasMetadata && JPEGStrip.metadataFree(p3) == nil, "a profile to convert from")
        #expect(JPEGStrip.metadataFree(try photo.grey().encoded(as: .jpeg)) == nil, "one component")
        #expect(JPEGStrip.metadataFree(try Fixtures.image(.png)) == nil)
        let jpeg = try Fixtures.image(.jpeg)
        #expect(JPEGStrip.metadataFree(jpeg.prefix(jpeg.count / 2)) == nil, "cut short")
        #expect(JPEGStrip.metadataFree(Data([0xFF, 0xD8, 0xFF, 0xD9])) == nil, "no frame")
    }

    @Test("the preprocessor passes a small upright JPEG's data through and nothing that needs changing")
    func passThroughOnlyWhereNothingChanges() throws {
        let p = Preprocessor(canonicalSide: 1024, thumbnailSide: 256, quality: 85)
        let small = try Self.withMetadata(try Fixtures.image(.jpeg, width: 640, height: 480, seed: 9))
        #expect(p.passThrough(small, header: try Image.header(of: small), warnings: []) == JPEGStrip.metadataFree(small))
        #expect(p.passThrough(small, header: try Image.header(of: small), warnings: ["decode.warning"]) == nil)
        let large = try Fixtures.image(.jpeg, width: 1600, height: 1200)
        #expect(p.passThrough(large, header: try Image.header(of: large), warnings: []) == nil, "over the canonical size")
        let turned = try Fixtures.rotatedJPEG(orientation: 6)
        #expect(p.passThrough(turned, header: try Image.header(of: turned), warnings: []) == nil, "an EXIF turn")
    }
}
