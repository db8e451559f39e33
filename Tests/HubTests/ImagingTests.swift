import Foundation
import HubCore
import HubTesting
@testable import Imaging
import CVips
import Synchronization
import Testing

@Suite struct ImagingTests {
    init() { Vips.start() }

    @Test func sniffsFormatsFromBytesNotNames() throws {
        #expect(ImageFormat.sniff(try Fixtures.image(.jpeg)) == .jpeg)
        #expect(ImageFormat.sniff(try Fixtures.image(.png)) == .png)
        #expect(ImageFormat.sniff(try Fixtures.image(.webp)) == .webp)
        #expect(ImageFormat.sniff(try Fixtures.image(.heif)) == .heif)
        #expect(ImageFormat.sniff(Data("<?xml version=\"1.0\"?><svg xmlns=\"http://www.w3.org/2000/svg\"/>".utf8)) == .svg)
        #expect(ImageFormat.sniff(Data("%PDF-1.4\n".utf8)) == .pdf)
        #expect(ImageFormat.sniff(Data("just some text, named photo.jpg".utf8)) == nil)
        #expect(ImageFormat.sniff(Data()) == nil)
    }

    @Test("thumbnails of pixels in memory (OpenCV) match libvips's reduce of the same image: sizes exact, pixels within a few levels")
    func thumbnailsMatchLibvips() throws {
        for (width, height) in [(512, 384), (700, 500), (1024, 683), (300, 1000), (257, 256)] {
            let lazy = try Synthetic.photo(width: width, height: height, seed: width)
            let inMemory = try lazy.materialized()
            let fast = try inMemory.reduced(longSide: 256), reference = try lazy.reduced(longSide: 256)
            #expect(fast.longSide == 256 && fast.width == reference.width && fast.height == reference.height, "\(width)×\(height)")
            let a = try fast.bytes(), b = try reference.bytes()
            #expect(a.count == b.count && a.count == fast.width * fast.height * 3)
            let mean = zip(a, b).reduce(0.0) { $0 + abs(Double($1.0) - Double($1.1)) } / Double(max(1, a.count))
            // The photo's grain is averaged by either filter; a shifted or point-sampled result differs by far more.
            #expect(mean < 6, "\(width)×\(height): mean difference \(mean)")
            let grey = try inMemory.grey().materialized().reduced(longSide: 128)
            #expect(grey.bands == 1 && grey.longSide == 128)
        }
        let small = try Synthetic.photo(width: 200, height: 100, seed: 1).materialized()
        #expect(try small.reduced(longSide: 256) === small, "never scaled up")
    }

    @Test("an upright 8-bit sRGB JPEG goes through normalisation without a libvips operation; others are turned and converted")
    func normalisationSkipsNoOps() throws {
        let jpeg = try Synthetic.photo(width: 320, height: 240, seed: 3).encoded(as: .jpeg, quality: 90)
        let decoded = try Image.decode(jpeg, longSide: 1024, strictness: .error)
        #expect(try decoded.autoRotated() === decoded, "upright: no autorot")
        #expect(try decoded.sRGB() === decoded, "8-bit sRGB with three bands: no colourspace, no cast")
        let grey = try decoded.grey().materialized()
        let widened = try grey.sRGB()
        #expect(widened.bands == 3 && widened.isUChar && widened !== grey)
        let turned = try Image.decode(try Fixtures.rotatedJPEG(orientation: 6), longSide: 1024, strictness: .error)
        let upright = try turned.autoRotated()
        #expect(upright !== turned && upright.width == turned.height && upright.height == turned.width)
    }

    @Test("a colour JPEG decoded by libjpeg directly: shrunk in the IDCT then fitted, the same picture as libvips's, with its profile and orientation; grey goes to libvips")
    func directJPEGDecode() throws {
        let photo = try Synthetic.photo(width: 1200, height: 900, seed: 8)
        let jpeg = try photo.encoded(as: .jpeg, quality: 92)
        let direct = try Image.decode(jpeg, longSide: 1024, strictness: .warning, direct: true)
        let viaVips = try Image.decode(jpeg, longSide: 1024, strictness: .warning)
        #expect(direct.width == 1024 && direct.height == viaVips.height && direct.bands == 3 && direct.isUChar)
        // Both shrink in the IDCT only by a power of two (here not at all) and then fit through OpenCV; compared
        // at 64 pixels, within a grey level or two.
        let a = try direct.reduced(longSide: 64).bytes(), b = try viaVips.reduced(longSide: 64).bytes()
        let mean = zip(a, b).reduce(0.0) { $0 + abs(Double($1.0) - Double($1.1)) } / Double(max(1, a.count))
        #expect(a.count == b.count && mean < 2, "mean difference \(mean)")
        // Smaller than the long side: decoded whole, pixel for pixel as libvips decodes it.
        let small = try Synthetic.photo(width: 320, height: 240, seed: 9).encoded(as: .jpeg, quality: 90)
        #expect(try Image.decode(small, longSide: 1024, strictness: .warning, direct: true).bytes()
                == Image.decode(small, longSide: 1024, strictness: .warning).bytes())
        // The profile and the orientation come along, for sRGB() and autoRotated().
        let p3 = try photo.converted(toProfile: "p3").jpegKeepingMetadata()
        let withProfile = try Image.decode(p3, longSide: 1024, strictness: .warning, direct: true)
        let profile = try Image.decode(p3, longSide: 1024, strictness: .warning).iccProfile
        #expect(withProfile.iccProfile != nil && withProfile.iccProfile == profile)
        let turned = try Image.decode(try Fixtures.rotatedJPEG(orientation: 6), longSide: 1024, strictness: .warning, direct: true)
        let upright = try turned.autoRotated()
        #expect(turned.orientation == 6 && upright.height == turned.width)
        let grey = try Image.decode(try photo.grey().encoded(as: .jpeg), longSide: 1024, strictness: .warning, direct: true)
        #expect(grey.bands == 1 && grey.longSide == 1024)
        // Damage: cut short is truncation at either strictness; flipped bits are corrupt when strict.
        for strictness in [Strictness.warning, .error] {
            let cut = #expect(throws: ImagingError.self) {
                try Image.decode(jpeg.prefix(jpeg.count / 2), longSide: 1024, strictness: strictness, direct: true)
            }
            #expect(cut?.code == "decode.truncated", "\(cut?.message ?? "")")
        }
        let flipped = #expect(throws: ImagingError.self, "flipped bits decoded strictly") {
            try Image.decode(Fixtures.flippedScan(jpeg), longSide: 1024, strictness: .warning, direct: true)
        }
        #expect(flipped?.code == "decode.corrupt", "\(flipped?.message ?? "")")
    }

    @Test("libvips opens its HEIF module and none of the others (ImageMagick, poppler, OpenSlide, JPEG XL)")
    func onlyTheHEIFModule() throws {
        #expect(Vips.hasOperation("heifload_buffer") && Vips.hasOperation("jpegload_buffer"))
        // Where the process may keep its module directory (a user's own ~/.cache) and no VIPSHOME is given.
        let home = ProcessInfo.processInfo.environment["HOME"] ?? ""
        if ProcessInfo.processInfo.environment["VIPSHOME"] == nil, !home.isEmpty, FileManager.default.isWritableFile(atPath: home) {
            for other in ["magickload_buffer", "pdfload_buffer", "openslideload", "jxlload_buffer"] {
                #expect(!Vips.hasOperation(other), "\(other) is loaded")
            }
        }
    }

    @Test func headerIsReadWithoutDecoding() throws {
        let header = try Image.header(of: try Fixtures.pngDeclaring(width: 50_000, height: 50_000))
        #expect(header.width == 50_000 && header.height == 50_000 && header.format == .png)
    }

    @Test func strictDecodeRefusesTruncatedAndCorruptJPEG() throws {
        let jpeg = try Fixtures.image(.jpeg, width: 1200, height: 900)
        #expect(throws: ImagingError.self) { try Image.decode(jpeg.prefix(jpeg.count / 2), longSide: 1024, strictness: .error) }
        #expect(throws: ImagingError.self) { try Image.decode(Fixtures.flippedScan(jpeg), longSide: 1024, strictness: .warning) }
        let ok = try Image.decode(jpeg, longSide: 1024, strictness: .warning)
        #expect(ok.width == 1024 && ok.height == 768)
    }

    @Test("concurrent failing decodes each get their own reason code (libvips's error buffer is process-global)")
    func concurrentFailuresAreClassifiedByTheirOwnMessage() throws {
        let jpeg = try Fixtures.image(.jpeg, width: 1200, height: 900)
        let truncated = jpeg.prefix(jpeg.count / 2)
        var rng = SeededRandom(seed: 9)
        let garbage = Data(jpeg.prefix(4)) + Data((0..<20_000).map { _ in UInt8.random(in: 0...255, using: &rng) })
        let header = try Image.header(of: jpeg)
        let codes = Mutex([String](repeating: "", count: 64))
        DispatchQueue.concurrentPerform(iterations: 64) { i in
            let code: String
            do {
                _ = try Image.decode(i % 2 == 0 ? truncated : garbage, header: header, longSide: 1024, strictness: .error)
                code = "decoded"
            } catch let e as ImagingError { code = e.code } catch { code = "\(error)" }
            codes.withLock { $0[i] = code }
        }
        let seen = codes.withLock { $0 }
        #expect(seen.enumerated().filter { $0.offset % 2 == 0 }.allSatisfy { $0.element == "decode.truncated" }, "\(seen)")
        #expect(seen.enumerated().filter { $0.offset % 2 == 1 }.allSatisfy { $0.element == "decode.corrupt" }, "\(seen)")
    }

    @Test func differenceHashSurvivesReencodingButSeparatesImages() throws {
        let a = try Image.load(try Fixtures.image(.jpeg, seed: 1))
        let copy = try Image.load(try a.fitted(longSide: 500).encoded(as: .jpeg, quality: 60))
        let b = try Image.load(try Fixtures.image(.jpeg, seed: 2))
        let ha = try a.differenceHash(), hc = try copy.differenceHash(), hb = try b.differenceHash()
        #expect(ha.hammingDistance(to: hc) <= 6)
        #expect(ha.hammingDistance(to: hb) > 12)
    }

    @Test func qualityMetricsSeeBlurAndExposure() throws {
        let sharp = try Image.load(try Fixtures.image(.png))
        let m = try sharp.qualityMetrics()
        let blurry = try sharp.blurred(sigma: 6).qualityMetrics()
        let dark = try sharp.linear(0.1, 0).qualityMetrics()
        #expect(blurry.sharpness < m.sharpness / 10)
        #expect(dark.brightness < 30 && m.brightness > 90)
    }

    /// Mean absolute difference between two images' samples.
    func difference(_ a: Image, _ b: Image) throws -> Double {
        let x = try a.bytes(), y = try b.bytes()
        #expect(x.count == y.count)
        return Double(zip(x, y).reduce(0) { $0 + abs(Int($1.0) - Int($1.1)) }) / Double(max(1, x.count))
    }

    /// `profile` with `transform` applied to the body of the tags in `signatures` (after their 8-byte type header).
    func patched(_ profile: Data, tags signatures: Set<String>, _ transform: (inout [UInt8]) -> Void) -> Data {
        var bytes = [UInt8](profile)
        func u32(_ at: Int) -> Int { bytes[at..<at + 4].reduce(0) { $0 << 8 | Int($1) } }
        for entry in 0..<u32(128) where signatures.contains(String(decoding: bytes[132 + 12 * entry..<136 + 12 * entry], as: UTF8.self)) {
            let offset = u32(136 + 12 * entry), size = u32(140 + 12 * entry)
            var body = Array(bytes[offset + 8..<offset + size])
            transform(&body)
            bytes.replaceSubrange(offset + 8..<offset + size, with: body)
        }
        return Data(bytes)
    }

    @Test("an ICC profile is sRGB by its colorants and curves, whatever its name; other profiles are converted")
    func srgbProfilesAreRecognisedByWhatTheySay() throws {
        let photo = try Synthetic.photo(width: 240, height: 160, seed: 4)
        let srgb = try photo.converted(toProfile: "srgb"), p3 = try photo.converted(toProfile: "p3")
        #expect(!photo.hasSRGBProfile, "no profile at all")
        #expect(srgb.hasSRGBProfile)
        #expect(!p3.hasSRGBProfile)
        // libvips's own sRGB profile, its name scrubbed (as in the compact profiles phones write): still sRGB.
        let profile = try #require(srgb.iccProfile)
        let unnamed = patched(profile, tags: ["desc", "dmnd", "dmdd"]) { body in
            for i in body.indices where body[i] != 0 { body[i] = UInt8(ascii: "x") }
        }
        #expect(!String(decoding: unnamed, as: UTF8.self).contains("sRGB"))
        #expect(try srgb.withICCProfile(unnamed).hasSRGBProfile)
        // The same profile with its red colorant moved by 0.02 in X: not sRGB.
        let redder = patched(profile, tags: ["rXYZ"]) { body in
            let x = (Int(body[0]) << 24 | Int(body[1]) << 16 | Int(body[2]) << 8 | Int(body[3])) + 1311
            for i in 0..<4 { body[i] = UInt8((x >> (24 - 8 * i)) & 0xFF) }
        }
        #expect(try !srgb.withICCProfile(redder).hasSRGBProfile)
        // What the profiles do to the pixels: an sRGB profile leaves them exactly as they are; the P3
        // file's samples differ from the sRGB picture until `sRGB()` converts them back.
        #expect(try difference(try srgb.sRGB(), photo) == 0)
        let p3Stored = try difference(p3, photo), p3Converted = try difference(try p3.sRGB(), photo)
        #expect(p3Stored > 4 && p3Converted < 1.5, "P3 as stored \(p3Stored), converted \(p3Converted)")
    }

    @Test("a photo in memory is converted by its profile's transform, built once, to libvips's pixels")
    func profileTransformsAreBuiltOnce() throws {
        let photo = try Synthetic.photo(width: 300, height: 200, seed: 6)
        // As a wide-gamut phone writes it, decoded into memory as ingest decodes it.
        let p3 = try photo.converted(toProfile: "p3").jpegKeepingMetadata(quality: 100)
        let decoded = try Image.decode(p3, longSide: 1024, strictness: .warning, direct: true)
        #expect(decoded.isInMemory && !decoded.hasSRGBProfile)
        let known = ColourProfiles.shared.entry(for: try #require(decoded.iccProfile))
        #expect(known === ColourProfiles.shared.entry(for: try #require(decoded.iccProfile)), "made once, then found")
        let converted = try decoded.sRGB()
        #expect(converted.isInMemory, "converted on the calling thread, not through a libvips pipeline")
        // The same pixels as libvips's icc_transform (the same profiles, intent and lcms), and the same profile
        // attached to the result.
        let byLibvips = try decoded.apply("icc_transform") { cvips_icc_to_srgb($0, &$1) }
        #expect(try converted.bytes() == byLibvips.bytes())
        #expect(converted.iccProfile == byLibvips.iccProfile && converted.hasSRGBProfile)
        // Back at the sRGB picture (within the JPEG's loss at quality 100), where the P3 samples as stored are not.
        let stored = try difference(decoded, photo), back = try difference(converted, photo)
        #expect(back < 1.5 && stored > 4, "P3 as stored \(stored), converted \(back)")
        // Not in memory (a pipeline), libvips converts: the same pixels.
        #expect(try decoded.rotated(quarterTurns: 2).sRGB().rotated(quarterTurns: 2).bytes() == converted.bytes())
        // The cache keeps the profiles used last.
        let cache = ColourProfiles(capacity: 2)
        let profiles = try ["p3", "srgb", "cmyk"].map { try #require(try photo.converted(toProfile: $0).iccProfile) }
        let first = cache.entry(for: profiles[0])
        _ = cache.entry(for: profiles[1])
        _ = cache.entry(for: profiles[0])
        _ = cache.entry(for: profiles[2])
        #expect(cache.count == 2 && cache.entry(for: profiles[0]) === first, "the one used last stays")
        #expect(first.transform != nil && cache.entry(for: profiles[1]).isSRGB && cache.entry(for: profiles[2]).transform == nil)
        // A profile over the size kept is judged each time and not kept (uploaders choose the profiles).
        let roomy = ColourProfiles(capacity: 4)
        _ = roomy.entry(for: profiles[0] + Data(count: ColourProfiles.largest))
        _ = roomy.entry(for: profiles[0])
        #expect(roomy.count == 1)
    }

    @Test(needsSharedData) func theCompactSRGBProfileOfRealPhotosIsRecognised() throws {
        // The interiors carry Facebook's 524-byte "c2" profile, whose name says nothing of sRGB.
        let photo = try Image.load(try SharedData.data("photos/interiors/pexels-3062948.jpg"))
        let profile = try #require(photo.iccProfile)
        #expect(profile.count == 524)
        #expect(photo.hasSRGBProfile)
    }

    @Test("the measures' single pass is exact on patterns whose answer is known")
    func measuresOfKnownPatterns() {
        let w = 90, h = 64, n = Double(w * h), interior = Double((w - 2) * (h - 2))
        let flat = Measures(grey: [UInt8](repeating: 100, count: w * h), width: w, height: h)
        #expect(flat.quality == QualityMetrics(sharpness: 0, brightness: 100, contrast: 0))
        let rising = (0..<h).flatMap { _ in (0..<w).map { UInt8($0 * 255 / (w - 1)) } }
        #expect(Measures(grey: rising, width: w, height: h).hash == UInt64.max, "each cell brighter than the one on its left")
        #expect(Measures(grey: rising.map { 255 - $0 }, width: w, height: h).hash == 0)
        // A one-pixel checkerboard: every interior Laplacian is ±1020, half of each.
        let checker = (0..<h).flatMap { y in (0..<w).map { x in UInt8((x + y) % 2 == 0 ? 0 : 255) } }
        let c = Measures(grey: checker, width: w, height: h).quality
        #expect(abs(c.sharpness - 1020 * 1020 * interior / (interior - 1)) < 1e-6 * c.sharpness)
        #expect(c.brightness == 127.5)
        #expect(abs(c.contrast - 127.5 * (n / (n - 1)).squareRoot()) < 1e-9)
        // Images smaller than the 9 × 8 grid, or too thin for a Laplacian, still measure.
        let tiny = Measures(grey: [10, 20, 30, 40, 50, 60], width: 3, height: 2)
        #expect(tiny.quality.sharpness == 0 && tiny.quality.brightness == 35)
    }

    @Test func encodingStripsAllMetadata() throws {
        let tagged = try Fixtures.rotatedJPEG(orientation: 6)
        #expect(try Image.load(tagged).hasMetadata)
        #expect(try Image.load(tagged).orientation == 6)
        let clean = try Image.load(tagged).autoRotated().encoded(as: .jpeg)
        let reloaded = try Image.load(clean)
        #expect(!reloaded.hasMetadata)
        #expect(reloaded.width == 400 && reloaded.height == 200)
    }

    @Test("JPEGs are encoded on the calling thread as libvips's saver would, with no segment but the image's")
    func jpegEncodingMatchesLibvipsSaver() throws {
        let photo = try Image.load(try Fixtures.image(.png, width: 640, height: 427))
        let ours = try photo.encoded(as: .jpeg, quality: 85)
        #expect(Array(ours.prefix(4)) == [0xFF, 0xD8, 0xFF, 0xDB], "SOI then the quantisation tables: no APPn segment")
        // libvips's own saver at the same quality (the fixture path, which keeps metadata; this image has none).
        let theirs = try photo.jpegKeepingMetadata(quality: 85)
        let a = try Image.load(ours), b = try Image.load(theirs)
        #expect(a.width == 640 && a.height == 427 && a.bands == 3)
        #expect(try difference(a, b) < 0.5, "same library, same tables, same chroma subsampling")
        #expect(abs(try difference(a, photo) - difference(b, photo)) < 0.2, "as far from the original as libvips's")
        #expect(try photo.encoded(as: .jpeg, quality: 40).count < ours.count)
        // From quality 90 libvips keeps the chroma at full resolution, and so does the encoder.
        #expect(try difference(Image.load(try photo.encoded(as: .jpeg, quality: 95)), Image.load(try photo.jpegKeepingMetadata(quality: 95))) < 0.5)
        // libjpeg's errors come back as errors (its limit is 65500 pixels a side), not as a crash.
        let wide = try Image.fromPixels([UInt8](repeating: 128, count: 70_000 * 3), width: 70_000, height: 1, bands: 3)
        #expect(throws: ImagingError.self) { try wide.encoded(as: .jpeg) }
        // A lazy pipeline (computed during the encode) and a one-band image encode too, close to their pixels.
        let grey = try photo.blurred(sigma: 2).grey()
        let greyJPEG = try Image.load(try grey.encoded(as: .jpeg))
        #expect(greyJPEG.bands == 1 && greyJPEG.width == 640)
        let greyLoss = try difference(greyJPEG, grey)
        #expect(greyLoss < 2, "\(greyLoss)")
    }

    @Test("measures of RGB are taken on BT.601 luma")
    func measuresOfRGBUseLuma() throws {
        let w = 30, h = 20
        // Pure red, green and blue thirds: luma 76, 150 and 29.
        let rgb = (0..<h).flatMap { _ in (0..<w).flatMap { x -> [UInt8] in x < 10 ? [255, 0, 0] : x < 20 ? [0, 255, 0] : [0, 0, 255] } }
        let m = Measures(rgb: rgb, width: w, height: h)
        #expect(abs(m.quality.brightness - (76.0 + 150 + 29) / 3) < 1e-9)
        let luma = (0..<(w * h)).map { UInt8($0 % w < 10 ? 76 : $0 % w < 20 ? 150 : 29) }
        #expect(m == Measures(grey: luma, width: w, height: h))
        // An image measures the same through `measures()` as through its own bytes.
        let photo = try Image.load(try Fixtures.image(.png, width: 256, height: 170))
        #expect(try photo.measures() == Measures(rgb: try photo.bytes(), width: 256, height: 170))
    }
}
