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
        #expect(p.steps.map(\.name) == ["fit(1024)", "autoRotate", "toSRGB"])
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
