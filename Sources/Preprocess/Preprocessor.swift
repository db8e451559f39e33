import Foundation
import Imaging

/// One pure image-to-image step of preprocessing.
public struct PreprocessStep: Sendable {
    public let name: String
    let body: @Sendable (Image) throws -> Image

    public init(_ name: String, _ body: @escaping @Sendable (Image) throws -> Image) {
        self.name = name
        self.body = body
    }

    public func apply(_ image: Image) throws -> Image { try body(image) }

    /// Turns the pixels upright per EXIF orientation.
    public static let autoRotate = PreprocessStep("autoRotate") { try $0.autoRotated() }
    /// Colour-manages to 8-bit, 3-band sRGB.
    public static let toSRGB = PreprocessStep("toSRGB") { try $0.sRGB() }
    /// Scales down so the long side is at most `longSide`.
    public static func fit(_ longSide: Int) -> PreprocessStep {
        PreprocessStep("fit(\(longSide))") { try $0.fitted(longSide: longSide) }
    }
}

/// What the hub serves for an image: metadata-free JPEGs at canonical and thumbnail size.
public struct Renditions: Sendable {
    public let canonical: Data
    public let thumbnail: Data
}

/// Orientation, colour space and canonical sizes, as a list of steps applied in order; every rendition
/// is encoded with all metadata stripped (EXIF, GPS, XMP, ICC), so nothing the uploader's phone knew leaks.
public struct Preprocessor: Sendable {
    public let steps: [PreprocessStep]
    public let canonicalSide: Int
    public let thumbnailSide: Int
    public let quality: Int

    public init(canonicalSide: Int, thumbnailSide: Int, quality: Int) {
        self.canonicalSide = canonicalSide
        // Fit first: the long side does not depend on orientation, and rotating or colour-managing
        // a quarter of the pixels costs a quarter as much. Colour before turning: a decoded photo is still in
        // memory then, where a profile's transform is applied on the calling thread (`Image.sRGB`); turned
        // first, it would be a libvips pipeline. Colour management acts on each pixel alone, so the order does
        // not change the result.
        self.steps = [.fit(canonicalSide), .toSRGB, .autoRotate]
        self.thumbnailSide = thumbnailSide
        self.quality = quality
    }

    /// The steps applied to a decoded image: upright, in sRGB, at canonical size. Lazy: pass it to the
    /// decode (`Verifier.decode(then:)`) so decoding and normalising are one pass into memory, or call
    /// `materialized()` on the result before several consumers read it.
    public func normalize(_ decoded: Image) throws -> Image {
        try steps.reduce(decoded) { image, step in try step.apply(image) }
    }

    /// The thumbnail of a normalized image, computed into memory: it is encoded, and it is what the
    /// perceptual hash is taken from.
    public func thumbnail(of normalized: Image) throws -> Image {
        try normalized.reduced(longSide: thumbnailSide).materialized()
    }

    /// Encodes a normalized image as the canonical JPEG (unless `canonical` is given: the upload's own JPEG
    /// data without metadata, see `passThrough`) and its thumbnail (made here when not given).
    public func renditions(of normalized: Image, thumbnail: Image? = nil, canonical: Data? = nil) throws -> Renditions {
        Renditions(canonical: try canonical ?? normalized.encoded(as: .jpeg, quality: quality),
                   thumbnail: try (thumbnail ?? self.thumbnail(of: normalized)).encoded(as: .jpeg, quality: quality))
    }

    /// The upload's bytes as its canonical rendition, without metadata (`JPEGStrip`), when decoding and
    /// normalising changed nothing: a JPEG within the canonical size, upright (no EXIF turn), without a
    /// colour profile, 8-bit with three components, decoded without warnings. Nil otherwise.
    public func passThrough(_ bytes: Data, header: ImageHeader, warnings: [String]) -> Data? {
        guard header.format == .jpeg, header.orientation == 1, max(header.width, header.height) <= canonicalSide,
              warnings.isEmpty else { return nil }
        return JPEGStrip.metadataFree(bytes)
    }
}
