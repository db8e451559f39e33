import FeatureMatch
import Foundation
import Imaging

/// ORB keypoints of one image (OpenCV), for the geometric check of a near-duplicate candidate.
public final class LocalFeatures: @unchecked Sendable {
    private let pointer: OpaquePointer
    /// Keypoints found (zero for an image without texture).
    public let count: Int

    /// The picture size keypoints are found at, and how many are kept. The image is scaled (down or up) to the
    /// long side, in grey, so that ORB's fixed 31-pixel patches and borders mean the same on a 200-pixel copy
    /// and on a 4000-pixel original.
    public enum Scale: Sendable, Hashable {
        /// What decides a copy: 512 pixels, up to 1,000 keypoints.
        case full
        /// A first look on a smaller picture: 256 pixels (a thumbnail's size, which the pipeline glances at),
        /// up to 500 keypoints; 1.3 ms for a flower photo against 3.3 ms at full size. Its quick look
        /// (`quickLook` strongest) sets most candidates aside before the full detection is made. On the shared
        /// photos' copies (resized 0.6–1.2×, cropped 6% a side, JPEG 60–80; `bench near-dups`, 8 seeded runs
        /// of both sets) all 866 copies glanced at kept at least 18 inliers there, and 1,688 of 1,714 other
        /// candidates fewer than 5 (the rest, frames of one shoot, went on to the full match); at 320 pixels
        /// from the canonical rendition, 22 and 1,706 of 1,723.
        case glance

        public var side: Int { self == .full ? 512 : 256 }
        public var maxFeatures: Int { self == .full ? 1000 : 500 }
    }

    public static let side = Scale.full.side
    public static let maxFeatures = Scale.full.maxFeatures
    /// Keypoints a quick first look at a candidate matches on each side (the strongest).
    public static let quickLook = 250

    /// Detects keypoints on `image` at `scale`, turned grey (a weighted sum of the channels) and scaled to its
    /// side, in OpenCV from the pixels in memory (a decoded upload as it is: 0.5 ms where libvips's resize and
    /// colour conversion took about 3 ms of a photo); a libvips pipeline is scaled by libvips and computed first.
    public convenience init(_ image: Image, scale: Scale = .full) throws {
        try self.init(image, side: scale.side, maxFeatures: scale.maxFeatures)
    }

    /// Detects up to `maxFeatures` keypoints with the image scaled to a long side of `side`.
    public init(_ image: Image, side: Int, maxFeatures: Int) throws {
        let source = image.isInMemory ? image
            : try image.resized(width: max(1, image.width * side / image.longSide),
                                height: max(1, image.height * side / image.longSide)).materialized()
        var error: UnsafeMutablePointer<CChar>?
        let made = source.withMemoryPixels { pixels in
            dih_features_detect_pixels(pixels, Int32(source.width), Int32(source.height), Int32(source.bands), Int32(side),
                                       Int32(maxFeatures), &error)
        }
        guard let made else { throw BackboneError(description: "local features: 8-bit pixels wanted, not \(source.bands) bands of another format") }
        guard let made else { throw BackboneError(description: "local features: \(Self.take(error))") }
        pointer = made
        count = Int(dih_features_count(made))
    }

    deinit { dih_features_free(pointer) }

    /// How `self` and `other` agree: ratio-test matches, and how many of them one similarity transform
    /// (rotation, uniform scale, translation; RANSAC, 3 px) explains. With `strongest`, only that many of
    /// each side's strongest keypoints take part (a quick first look).
    public func match(_ other: LocalFeatures, strongest: Int = LocalFeatures.maxFeatures) throws -> GeometricMatch {
        var matches: Int32 = 0, inliers: Int32 = 0, overlapping: Int32 = 0, scale = 0.0
        var error: UnsafeMutablePointer<CChar>?
        let limit = Int32(clamping: max(1, strongest))
        guard dih_features_match(pointer, other.pointer, limit, 0.8, 3.0, &matches, &inliers, &scale, &overlapping, &error) == 0 else {
            throw BackboneError(description: "matching local features: \(Self.take(error))")
        }
        return GeometricMatch(matches: Int(matches), inliers: Int(inliers), scale: scale, overlapping: Int(overlapping))
    }

    /// The message of an error from `libFeatureKernels.so` (freed here).
    package static func take(_ error: UnsafeMutablePointer<CChar>?) -> String {
        guard let error else { return "unknown error" }
        defer { dih_features_string_free(error) }
        return String(cString: error)
    }
}

/// The outcome of matching two images' local features.
public struct GeometricMatch: Sendable, Equatable {
    public let matches: Int
    public let inliers: Int
    /// The fitted transform's scale (the second image's pixels per the first's).
    public let scale: Double
    /// Keypoints of the first image the transform puts inside the second.
    public let overlapping: Int

    public init(matches: Int, inliers: Int, scale: Double, overlapping: Int) {
        self.matches = matches
        self.inliers = inliers
        self.scale = scale
        self.overlapping = overlapping
    }

    /// Whether one picture is a crop, resize or re-encoding of the other: at least `minInliers` matches fit
    /// one similarity transform, they are at least `minRatio` of all matches, and at least `minCoverage` of
    /// the first picture's keypoints that the transform puts inside the second (what the two could share).
    /// On the shared photos, copies (resized 0.6–1.2×, cropped 6% a side, JPEG 60–80) keep 72–100% of their
    /// matches and 19–63% of their shared keypoints on the transform; photos of different scenes match a
    /// few keypoints by chance, which no single transform explains; a second frame of one kitchen shoot (a
    /// different photo) matches its still parts only: 73% of its matches but 14% of its shared keypoints.
    /// The transform's scale must lie within 0.25–4 (both pictures are scaled to one long side, so a copy's
    /// scale comes from its crop alone; a degenerate fit squeezes matches together).
    public func isCopy(minInliers: Int = 25, minRatio: Double = 0.7, minCoverage: Double = 0.15) -> Bool {
        inliers >= minInliers && Double(inliers) >= minRatio * Double(max(1, matches))
            && Double(inliers) >= minCoverage * Double(overlapping) && (0.25...4).contains(scale)
    }
}
