import Foundation
import HubCore
import HubTesting
import Imaging
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

    @Test func encodingStripsAllMetadata() throws {
        let tagged = try Fixtures.rotatedJPEG(orientation: 6)
        #expect(try Image.load(tagged).hasMetadata)
        #expect(try Image.load(tagged).orientation == 6)
        let clean = try Image.load(tagged).autoRotated().encoded(as: .jpeg)
        let reloaded = try Image.load(clean)
        #expect(!reloaded.hasMetadata)
        #expect(reloaded.width == 400 && reloaded.height == 200)
    }
}
